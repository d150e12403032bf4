/* expect_abort.c — see expect_abort.h. */
#include "expect_abort.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int mftest_aborts_with(void (*fn)(void), const char *needle) {
  int fd[2];
  if (pipe(fd) != 0) {
    perror("    mftest_aborts_with: pipe");
    return 0;
  }
  /* Flushed now, or the child's exit would write the parent's buffered output twice. */
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    perror("    mftest_aborts_with: fork");
    close(fd[0]);
    close(fd[1]);
    return 0;
  }
  if (pid == 0) {
    close(fd[0]);
    dup2(fd[1], 2);
    alarm(30);
    fn();
    _exit(0);
  }
  close(fd[1]);
  char buf[4096];
  size_t k = 0;
  ssize_t r;
  while (k < sizeof buf - 1 && (r = read(fd[0], buf + k, sizeof buf - 1 - k)) > 0) k += (size_t)r;
  buf[k] = '\0';
  /* Drain whatever did not fit, so a chatty child never blocks on a full pipe. */
  char sink[512];
  while (read(fd[0], sink, sizeof sink) > 0) {
  }
  close(fd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  int ok = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT && strstr(buf, needle) != NULL;
  if (!ok) {
    if (WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT)
      fprintf(stderr, "    child aborted without \"%s\" in its stderr: %s\n", needle, buf);
    else if (WIFSIGNALED(st))
      fprintf(stderr, "    child killed by signal %d, expected SIGABRT with \"%s\"; stderr: %s\n",
              WTERMSIG(st), needle, buf);
    else
      fprintf(stderr, "    child exited with status %d, expected SIGABRT with \"%s\"; stderr: %s\n",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1, needle, buf);
  }
  return ok;
}
