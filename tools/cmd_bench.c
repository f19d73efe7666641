/* mamba-s6 bench <what>: benchmark commands. Each prints a table with the
 * measured figure next to its floor; --json prints one object per case. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} bench_entry;

static const bench_entry benches[] = {
    {"tokenize", "tokenizer encode MB/s and tokens/s on one core", bench_tokenize},
    {"scan", "selective scan (prefill) and state update (decode) vs their floors", cmd_bench_scan},
    {"generate", "model prefill tokens/s and decode ms/token vs the weight-read floor", cmd_bench_generate},
    {"none", "placeholder kept so the table is never empty", NULL},
};

int cmd_bench(int argc, char **argv) {
    int n = (int)(sizeof benches / sizeof benches[0]);
    if (argc < 2 || !strcmp(argv[1], "--help")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: mamba-s6 bench <what> [options]\n\n");
        for (int i = 0; i < n; i++)
            if (benches[i].run) fprintf(f, "  %-10s %s\n", benches[i].name, benches[i].summary);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 0; i < n; i++)
        if (benches[i].run && !strcmp(argv[1], benches[i].name)) return benches[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mamba-s6 bench: unknown benchmark '%s' (mamba-s6 bench --help lists them)\n", argv[1]);
    return 2;
}
