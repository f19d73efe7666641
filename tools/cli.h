/* The mamba-s6 command-line tool: one function per subcommand. Only code
 * under tools/ prints usage or exits. */
#ifndef MS6_CLI_H
#define MS6_CLI_H

#include "mamba_s6.h"

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} cli_command;

int cmd_selftest(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int bench_tokenize(int argc, char **argv);
int cmd_init(int argc, char **argv);
int cmd_bench_scan(int argc, char **argv);
int cmd_bench_generate(int argc, char **argv);
/* further subcommands are declared here as they land */

/* Shared argument helpers (cli_util.c). Each prints a message naming the
 * option and returns non-zero on bad input. */
int cli_parse_int(const char *opt, const char *s, long long lo, long long hi, long long *out);
int cli_parse_float(const char *opt, const char *s, double lo, double hi, double *out);
/* Parses "ID ID ..." (spaces or commas). *ids is malloc'ed. */
int cli_parse_ids(const char *s, int32_t **ids, int64_t *n);
double cli_now(void); /* monotonic seconds */

#endif
