/* libFuzzer target for the web front's target resolution
 * (strata_web_resolve, adapters/web.h).
 *
 * The input, cut at its first NUL, is a request target resolved over a
 * real tree made once in a temporary directory: a file, a subdirectory
 * with an index page, a hidden file, symlinks inside the root and out of
 * it. Whatever the target, the answer must keep the contract:
 *  - 200: the path is the root + "/" + something, fully resolved (its
 *    realpath is itself), a regular file, no hidden name below the root;
 *    the target was origin-form without a backslash or control byte;
 *  - else 400, 404 or 414, never anything else;
 *  - the same answer with out exactly large enough, 414 with one byte
 *    less; the rooted and the root-less site agree on what is malformed
 *    (400); a reply for GET of the target answers the same status.
 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <strata/stream.h>
#include <strata/web.h>

#define CHECK(c)                                                          \
    do {                                                                  \
        if (!(c)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,        \
                    __LINE__, #c);                                        \
            abort();                                                      \
        }                                                                 \
    } while (0)

static char top[PATH_MAX];
static strata_web_site site, bare;
static char made[32][PATH_MAX];
static int n_made;

static const char *path_of(const char *rel)
{
    static char buf[PATH_MAX];

    CHECK(snprintf(buf, sizeof buf, "%s/%s", top, rel) < (int)sizeof buf);
    return buf;
}

/* path_of, remembered for the cleanup at exit. */
static const char *at(const char *rel)
{
    CHECK(n_made < 32);
    memcpy(made[n_made++], path_of(rel), PATH_MAX);
    return made[n_made - 1];
}

static void put(const char *rel, const char *text)
{
    FILE *f = fopen(at(rel), "w");

    CHECK(f != NULL);
    CHECK(fputs(text, f) >= 0);
    CHECK(fclose(f) == 0);
}

static void cleanup(void)
{
    while (n_made > 0)
        (void)remove(made[--n_made]);
    (void)rmdir(top);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");

    (void)argc;
    (void)argv;
    snprintf(top, sizeof top, "%s/strata_fuzz_web_XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : P_tmpdir);
    CHECK(mkdtemp(top) != NULL);
    atexit(cleanup);
    put("outside.txt", "outside\n");
    CHECK(mkdir(at("root"), 0755) == 0);
    put("root/a.txt", "a\n");
    put("root/index.html", "<p>index</p>\n");
    put("root/.hidden", "hidden\n");
    put("root/%41", "percent\n");
    CHECK(mkdir(at("root/sub"), 0755) == 0);
    put("root/sub/index.html", "<p>sub</p>\n");
    put("root/sub/b.js", "b\n");
    CHECK(mkdir(at("root/empty"), 0755) == 0);
    CHECK(symlink("../outside.txt", at("root/link_out")) == 0);
    CHECK(symlink("..", at("root/link_up")) == 0);
    CHECK(symlink("a.txt", at("root/link_in")) == 0);
    CHECK(symlink("sub", at("root/link_dir")) == 0);
    CHECK(symlink(".hidden", at("root/link_hidden")) == 0);
    CHECK(strata_web_site_init(&site, path_of("root")) == 0);
    CHECK(strata_web_site_init(&bare, NULL) == 0);
    return 0;
}

static int bad_raw(const char *t)
{
    for (; *t != '\0' && *t != '?' && *t != '#'; t++)
        if ((unsigned char)*t < 0x20 || *t == 0x7f || *t == '\\')
            return 1;
    return 0;
}

static void check_found(const char *target, const char *out)
{
    size_t n = strlen(site.root);
    char real[PATH_MAX];
    struct stat st;

    CHECK(target[0] == '/' && !bad_raw(target));
    CHECK(strncmp(out, site.root, n) == 0 && out[n] == '/' &&
          out[n + 1] != '\0');
    CHECK(out[n + 1] != '.' && strstr(out + n, "/.") == NULL);
    CHECK(realpath(out, real) != NULL && strcmp(real, out) == 0);
    CHECK(lstat(out, &st) == 0 && S_ISREG(st.st_mode));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *target = malloc(size + 1), out[PATH_MAX], small[PATH_MAX];
    strata_web_reply *r;
    size_t len;
    int st, st2;

    CHECK(target != NULL);
    memcpy(target, data, size);
    target[size] = '\0';
    st = strata_web_resolve(&site, target, out, sizeof out);
    CHECK(st == 200 || st == 400 || st == 404 || st == 414);
    if (st == 200) {
        check_found(target, out);
        len = strlen(out);
        CHECK(strata_web_resolve(&site, target, small, len + 1) == 200);
        CHECK(strcmp(small, out) == 0);
        CHECK(strata_web_resolve(&site, target, small, len) == 414);
    }
    st2 = strata_web_resolve(&bare, target, small, sizeof small);
    CHECK(st2 == 200 || st2 == 400 || st2 == 404 || st2 == 414);
    CHECK((st == 400) == (st2 == 400));
    if (st2 == 200)
        CHECK(small[0] == '\0' && target[0] == '/');
    r = strata_web_reply_new(&site, "GET", target, NULL);
    CHECK(r != NULL && strata_web_reply_status(r) == st);
    strata_web_reply_free(r);
    free(target);
    return 0;
}
