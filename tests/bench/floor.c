/* The floor for tests/bench/run: the least a supervisor can do to restart a
 * service. fork, exec argv[1..], wait for it to die, again, forever (until
 * SIGTERM). No restart delay, no bookkeeping. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static pid_t child;

static void on_term(int sig) {
        (void) sig;
        stop = 1;
        if (child > 0)
                kill(child, SIGTERM);
}

int main(int argc, char **argv) {
        struct sigaction sa = { .sa_handler = on_term };

        if (argc < 2) {
                fprintf(stderr, "usage: %s PROGRAM [ARG...]\n", argv[0]);
                return 2;
        }
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        while (!stop) {
                int status;

                child = fork();
                if (child < 0) {
                        perror("fork");
                        sleep(1);
                        continue;
                }
                if (child == 0) {
                        signal(SIGTERM, SIG_DFL);
                        signal(SIGINT, SIG_DFL);
                        execv(argv[1], argv + 1);
                        _exit(127);
                }
                while (waitpid(child, &status, 0) < 0)
                        if (stop)
                                break;
        }
        if (child > 0)
                waitpid(child, NULL, 0);
        return 0;
}
