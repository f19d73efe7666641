/* mamba-s6: command-line entry point and subcommand dispatch. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const cli_command commands[] = {
    {"version", "print the version", NULL},
    {"bench", "benchmarks: measured figures next to the hardware floor", cmd_bench},
    {"generate", "generate text or ids from a prompt (-m DIR -p TEXT | --ids ...)", cmd_generate},
    {"logits", "write the logits of every position of --ids to a float32 file", cmd_logits},
    {"info", "print a model's config, parameter count, dtypes and memory", cmd_info},
    {"tokenize", "print the token ids of a text (--tokenizer FILE | -m DIR)", cmd_tokenize},
    {"detokenize", "print the text of token ids (--tokenizer FILE | -m DIR)", cmd_detokenize},
    {"init", "write a random-init model with the shapes of a state-spaces checkpoint", cmd_init},
    {"selftest", "check the kernels of every available backend against cpu-ref and time them", cmd_selftest},
};
static const int n_commands = (int)(sizeof commands / sizeof commands[0]);

static void usage(FILE *f) {
    fprintf(f,
            "mamba-s6 %s - Mamba-1 (S6) state-space model inference\n\n"
            "usage: mamba-s6 <command> [options]\n\ncommands:\n",
            ms6_version());
    for (int i = 0; i < n_commands; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nmamba-s6 <command> --help shows a command's options.\n"
               "backends in this build: cpu-ref cpu%s\n",
            ms6_backend_compiled(MS6_BACKEND_CUDA) ? " cuda" : " (no cuda)");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("mamba-s6 %s (cuda backend: %s)\n", ms6_version(),
               ms6_backend_compiled(MS6_BACKEND_CUDA) ? "compiled" : "not compiled");
        return 0;
    }
    for (int i = 0; i < n_commands; i++)
        if (commands[i].run && !strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "mamba-s6: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
