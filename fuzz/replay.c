/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay.c - runs a libFuzzer harness over its seed corpus without
 * libFuzzer, so that `make check` replays every seed (with the sanitizers
 * when configured with --enable-sanitizers). Prints TAP: the plan, then one
 * "ok" per input; a harness that finds a property broken aborts, and the
 * inputs not reached count as failed.
 *
 *   fuzz/replay_NAME [DIR]     DIR defaults to the corpus named at build time
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef HS_FUZZ_CORPUS
#error "HS_FUZZ_CORPUS must name the seed corpus directory"
#endif

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;

    if (!f)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
        fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
        fread(buf, 1, (size_t)n, f) == (size_t)n) {
        *len = (size_t)n;
    }
    else {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : HS_FUZZ_CORPUS;
    char **names = NULL;
    size_t n = 0, cap = 0, i;
    struct dirent *de;
    DIR *d = opendir(dir);
    int failed = 0;

    if (!d) {
        printf("1..1\nnot ok 1 - cannot open %s\n", dir);
        return 1;
    }
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        if (n == cap) {
            char **more =
                realloc(names, (cap = cap ? cap * 2 : 32) * sizeof *names);
            if (!more)
                abort();
            names = more;
        }
        if (!(names[n++] = strdup(de->d_name)))
            abort();
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    LLVMFuzzerInitialize(&argc, &argv);
    printf("1..%zu\n", n);
    fflush(stdout);
    for (i = 0; i < n; i++) {
        char path[4096];
        size_t len = 0;
        unsigned char *buf;

        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (!(buf = slurp(path, &len))) {
            printf("not ok %zu - %s: cannot read\n", i + 1, names[i]);
            failed = 1;
        }
        else {
            LLVMFuzzerTestOneInput(buf, len);
            printf("ok %zu - %s\n", i + 1, names[i]);
            free(buf);
        }
        fflush(stdout);
        free(names[i]);
    }
    free(names);
    return failed;
}
