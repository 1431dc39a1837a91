#include <stdio.h>

static int classify(int n)
{
	if (n < 0)
		return -1;
	if (n == 0 || n > 100)
		return 0;
	return 1;
}

int main(int argc, char **argv)
{
	(void)argv;
	printf("%d\n", classify(argc));
	if (argc > 5)
		printf("many\n");
	return 0;
}
