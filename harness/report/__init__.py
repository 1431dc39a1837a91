"""What a run leaves in reports/, read back and shown: files a CI keeps and a person opens.

Modules:
  junit     the one JUnit outcome reader and test-name matcher
  runinfo   run.json: the command, directory and commit of a run, written before it
            starts; the command that reruns one test
  summary   summary.json and report.md (check)
  slices    a test's console slice file, its lines with the splats marked
  page      collect(): a reports directory gathered for the page (header, tests that
            did not pass with their consoles, bug table, matrix, bench)
  html      write_page(): reports/index.html, one self-contained file
"""
