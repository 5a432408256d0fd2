/* vigilctl: the admin command line for vigil. */
#include <getopt.h>

#include "config.h"
#include "unit.h"

#define EXIT_USAGE 2

static void help(FILE *f) {
        fprintf(f,
                "Usage: vigilctl [OPTIONS] VERB [ARGS...]\n"
                "\n"
                "Verbs:\n"
                "  verify [--policy-dir DIR] FILE...  check unit (.service) and policy (.policy)\n"
                "                                     files without running anything\n"
                "\n"
                "Options:\n"
                "  -h, --help     show this help\n"
                "      --version  show the version\n");
}

/* Exit 0 when every file loads, 1 when any does not, 2 on usage errors. */
static int verb_verify(int argc, char **argv) {
        static const struct option options[] = {
                { "policy-dir", required_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        unit_load_options opts = {};
        bool failed = false;
        int c;

        optind = 1;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'p':
                        opts.policy_dir = optarg;
                        break;
                case 'h':
                        help(stdout);
                        return 0;
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                fprintf(stderr, "vigilctl verify: no files given\n");
                return EXIT_USAGE;
        }

        for (int i = optind; i < argc; i++) {
                _cleanup_unit_free_ unit *u = NULL;
                diag_list diags = {};
                const char *path = argv[i];
                int r;

                if (endswith(path, ".policy"))
                        r = policy_check_file(path, &diags);
                else if (endswith(path, ".service"))
                        r = unit_load_file(path, NULL, &opts, &diags, &u);
                else {
                        diag_add(&diags, DIAG_ERROR, path, 0,
                                 "not a unit (.service) or policy (.policy) file");
                        r = -EINVAL;
                }
                diag_list_print(&diags, stderr);
                if (r < 0 || diags.n_errors > 0)
                        failed = true;
                diag_list_done(&diags);
        }
        return failed ? 1 : 0;
}

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
} verbs[] = {
        { "verify", verb_verify },
};

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        int c;

        /* "+": options after the verb belong to the verb. */
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help(stdout);
                        return 0;
                case 'V':
                        printf("vigilctl %s\n", VIGIL_VERSION);
                        return 0;
                default:
                        return EXIT_USAGE;
                }
        if (optind >= argc) {
                help(stderr);
                return EXIT_USAGE;
        }
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(argv[optind], verbs[i].name))
                        return verbs[i].run(argc - optind, argv + optind);
        fprintf(stderr, "vigilctl: unknown verb \"%s\" (see vigilctl --help)\n", argv[optind]);
        return EXIT_USAGE;
}
