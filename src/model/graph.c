/*
 * graph.c - decode steps replayed from CUDA graphs.
 *
 * The device part of a decode step (forward.c's step_body: embedding, every
 * layer, norm_f and lm_head) reads its inputs from fixed buffers (the ids and
 * state slots in the scratch, the state of the sequences), so for a given
 * state and batch size n it is the same sequence of kernels every time. On
 * the CUDA backend the first step of each (state, n, body) runs eagerly (cuBLASLt
 * chooses its plans and allocates outside any capture), the second is
 * captured into a CUDA graph, and that step and all later ones are one graph
 * launch. If capture fails (an op that cannot be captured), the step runs
 * eagerly and that (state, n) is never captured again; results are the same
 * either way. MS6_CUDA_GRAPH=0 in the environment turns graphs off (to
 * compare timings). Other backends call the body directly.
 */
#include "model/model_internal.h"

#ifdef MS6_HAVE_CUDA
#include "backend/cuda/graph.h"
#endif

#include <stdlib.h>
#include <string.h>

#define GRAPH_SLOTS 16

#ifdef MS6_HAVE_CUDA
typedef struct graph_entry {
    const void *state;   /* identifies the ms6_fwd_state (its ssm buffer) */
    int64_t n;
    ms6_step_body body;  /* the step alone, or with the argmax fed back */
    int runs;            /* eager runs so far */
    int disabled;        /* capture failed once */
    uint64_t stamp;
    ms6_cuda_graph *g;
} graph_entry;

typedef struct graph_cache {
    graph_entry e[GRAPH_SLOTS];
    uint64_t clock;
    int off;             /* MS6_CUDA_GRAPH=0 */
} graph_cache;

static graph_entry *find_entry(graph_cache *gc, const void *state, int64_t n, ms6_step_body body) {
    graph_entry *victim = NULL;
    for (int i = 0; i < GRAPH_SLOTS; i++) {
        graph_entry *e = &gc->e[i];
        if (e->state == state && e->n == n && e->body == body) return e;
        if (!victim || (victim->state && (!e->state || e->stamp < victim->stamp))) victim = e;
    }
    /* take an empty slot or the least recently used one */
    ms6_cuda_graph_free(victim->g);
    memset(victim, 0, sizeof *victim);
    victim->state = state;
    victim->n = n;
    victim->body = body;
    return victim;
}
#endif

ms6_status ms6_graph_step(ms6_model *m, ms6_fwd_state *s, ms6_fwd_scratch *w, int64_t n, ms6_step_body body,
                          char *msg) {
#ifdef MS6_HAVE_CUDA
    if (m->be->kind == MS6_BACKEND_CUDA) {
        graph_cache *gc = (graph_cache *)w->graphs;
        if (!gc) {
            gc = calloc(1, sizeof *gc);
            if (!gc) return body(m, s, w, n, msg);
            const char *env = getenv("MS6_CUDA_GRAPH");
            gc->off = env && !strcmp(env, "0");
            w->graphs = gc;
        }
        if (gc->off) return body(m, s, w, n, msg);
        graph_entry *e = find_entry(gc, s->ssm, n, body);
        e->stamp = ++gc->clock;
        if (e->g) {
            ms6_status st = ms6_cuda_graph_launch(m->be, e->g);
            if (st != MS6_STATUS_OK)
                return ms6_fmt_error(msg, st, "decode step: %s", ms6_backend_last_error(m->be));
            return MS6_STATUS_OK;
        }
        if (!e->disabled && e->runs >= 1) {
            if (ms6_cuda_graph_begin(m->be) == MS6_STATUS_OK) {
                ms6_status bst = body(m, s, w, n, msg);
                ms6_cuda_graph *g = NULL;
                ms6_cuda_graph_end(m->be, bst == MS6_STATUS_OK, &g);
                if (g) {
                    e->g = g;
                    ms6_status st = ms6_cuda_graph_launch(m->be, g);
                    if (st != MS6_STATUS_OK)
                        return ms6_fmt_error(msg, st, "decode step: %s", ms6_backend_last_error(m->be));
                    return MS6_STATUS_OK;
                }
            }
            /* nothing of the captured attempt ran: run the step for real */
            e->disabled = 1;
        }
        e->runs++;
        if (e->runs == 1) {
            /* the step before a capture runs on a stream that can be captured */
            ms6_status st = ms6_cuda_graph_prepare(m->be);
            if (st != MS6_STATUS_OK) e->disabled = 1;
        }
    }
#endif
    return body(m, s, w, n, msg);
}

void ms6_graph_cache_free(ms6_fwd_scratch *w) {
#ifdef MS6_HAVE_CUDA
    graph_cache *gc = (graph_cache *)w->graphs;
    if (gc)
        for (int i = 0; i < GRAPH_SLOTS; i++) ms6_cuda_graph_free(gc->e[i].g);
    free(gc);
#endif
    w->graphs = NULL;
}
