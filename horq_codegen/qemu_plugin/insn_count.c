/*
 * insn_count.c - QEMU TCG plugin that counts executed guest instructions.
 *
 * Arguments:
 *   mark=0xADDR  address of the firmware's noinline horq_bench_mark()
 *                (Thumb bit already stripped by the caller; stripped here too)
 *   out=PATH     file that receives the result at exit
 *   profile=PATH (optional) file that receives, at exit, one line
 *                "ADDR COUNT" (hex, decimal) per instruction address executed
 *                between the first and the last mark (the whole run if there
 *                are fewer than two marks)
 *   segments=PATH (optional) file that receives the same per-address counts
 *                for each stretch between two consecutive marks: at each mark
 *                after the first, a line "segment K" (K = 0 for the stretch
 *                from the first mark to the second) and then its "ADDR COUNT"
 *                lines. The mark instruction itself is counted in the stretch
 *                it opens, as in the mark counts below.
 *
 * Output (written from the atexit callback, so only on a clean exit):
 *   one line per execution of the mark address: the number of instructions
 *   executed before that mark instruction, then a final line "total N".
 *
 * Counting is per instruction, not per translation block: a TB may stop
 * early (a fault, a semihosting trap, an exception), and a per-insn inline
 * add counts exactly the instructions that started, whatever happens after.
 *
 * Debian's QEMU ships no qemu-plugin.h, so the few declarations used are
 * copied below from the plugin API version 1 (QEMU 7.2 accepts version 1).
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- subset of qemu-plugin.h, API version 1 ---- */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))

typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only ever passed by pointer */
struct qemu_plugin_tb;
struct qemu_plugin_insn;

enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS };
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };

typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index,
                                            void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id,
                                               struct qemu_plugin_tb *tb);

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id,
                                           qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id,
                                    qemu_plugin_udata_cb_t cb, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb,
                                                 size_t idx);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn,
                                                enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *insn,
                                            qemu_plugin_vcpu_udata_cb_t cb,
                                            enum qemu_plugin_cb_flags flags,
                                            void *userdata);
/* ---- end of the qemu-plugin.h subset ---- */

QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* The firmware under test is single-threaded (one vCPU), so one counter. */
static uint64_t insn_count;
static uint64_t mark_addr;
static char *out_path;

static uint64_t *marks;
static size_t n_marks;
static size_t cap_marks;

/* The profile: a counter per instruction address, in an open-addressing table
 * (addresses are stored plus one, so 0 marks a free slot). A guest program of
 * more than PROFILE_SLOTS / 2 instructions is refused rather than miscounted. */
#define PROFILE_SLOTS (1u << 20)
static char *profile_path;
static uint64_t *profile_addr;
static uint64_t *profile_count;
static uint64_t *profile_at_first_mark; /* the counters at the first and the latest mark */
static uint64_t *profile_at_last_mark;
static size_t profile_used;
static char *segments_path;
static FILE *segments_file;
static uint64_t *profile_at_segment_start; /* the counters at the latest mark, for segments= */

static uint64_t *profile_slot(uint64_t addr)
{
    size_t h = (size_t)((addr * 0x9E3779B97F4A7C15ull) >> 44) & (PROFILE_SLOTS - 1);
    while (profile_addr[h] != 0 && profile_addr[h] != addr + 1) {
        h = (h + 1) & (PROFILE_SLOTS - 1);
    }
    if (profile_addr[h] == 0) {
        if (++profile_used > PROFILE_SLOTS / 2) {
            fprintf(stderr, "insn_count: too many instruction addresses to profile\n");
            abort();
        }
        profile_addr[h] = addr + 1;
    }
    return &profile_count[h];
}

/* At a mark: the counts since the previous mark (none at the first), then a new start. */
static void write_segment(void)
{
    if (n_marks >= 2) {
        fprintf(segments_file, "segment %zu\n", n_marks - 2);
        for (size_t i = 0; i < PROFILE_SLOTS; i++) {
            const uint64_t count = profile_count[i] - profile_at_segment_start[i];
            if (profile_addr[i] != 0 && count != 0) {
                fprintf(segments_file, "%" PRIx64 " %" PRIu64 "\n", profile_addr[i] - 1, count);
            }
        }
    }
    memcpy(profile_at_segment_start, profile_count, PROFILE_SLOTS * sizeof *profile_count);
}

/*
 * Runs instead of the inline add on the mark instruction. Recording first
 * and incrementing second makes the value independent of the order in
 * which QEMU would run an inline op and a callback on the same insn.
 */
static void on_mark(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    (void)userdata;
    if (n_marks == cap_marks) {
        size_t cap = cap_marks ? cap_marks * 2 : 64;
        uint64_t *grown = realloc(marks, cap * sizeof *marks);
        if (!grown) {
            fprintf(stderr, "insn_count: out of memory for marks\n");
            abort();
        }
        marks = grown;
        cap_marks = cap;
    }
    marks[n_marks++] = insn_count;
    insn_count++;
    if (profile_count) {
        if (segments_file) {
            write_segment();
        }
        if (profile_path) {
            memcpy(n_marks == 1 ? profile_at_first_mark : profile_at_last_mark, profile_count,
                   PROFILE_SLOTS * sizeof *profile_count);
        }
        /* The mark instruction's own count, after the snapshots: it belongs to the stretch it opens. */
        (*profile_slot(mark_addr))++;
    }
}

static void on_tb_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t n = qemu_plugin_tb_n_insns(tb);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        if (qemu_plugin_insn_vaddr(insn) == mark_addr) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, on_mark,
                                                   QEMU_PLUGIN_CB_NO_REGS, NULL);
        } else {
            qemu_plugin_register_vcpu_insn_exec_inline(
                insn, QEMU_PLUGIN_INLINE_ADD_U64, &insn_count, 1);
        }
        if (profile_count && qemu_plugin_insn_vaddr(insn) != mark_addr) {
            qemu_plugin_register_vcpu_insn_exec_inline(
                insn, QEMU_PLUGIN_INLINE_ADD_U64,
                profile_slot(qemu_plugin_insn_vaddr(insn)), 1);
        }
    }
}

static void write_profile(void)
{
    FILE *f = fopen(profile_path, "w");
    if (!f) {
        perror("insn_count: cannot open profile file");
        return;
    }
    for (size_t i = 0; i < PROFILE_SLOTS; i++) {
        const uint64_t count = n_marks >= 2 ? profile_at_last_mark[i] - profile_at_first_mark[i] : profile_count[i];
        if (profile_addr[i] != 0 && count != 0) {
            fprintf(f, "%" PRIx64 " %" PRIu64 "\n", profile_addr[i] - 1, count);
        }
    }
    fclose(f);
}

static void on_exit_write(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    FILE *f = fopen(out_path, "w");
    if (!f) {
        perror("insn_count: cannot open out file");
        return;
    }
    for (size_t i = 0; i < n_marks; i++) {
        fprintf(f, "%" PRIu64 "\n", marks[i]);
    }
    fprintf(f, "total %" PRIu64 "\n", insn_count);
    fclose(f);
    if (profile_path) {
        write_profile();
    }
    if (segments_file) {
        fclose(segments_file);
        segments_file = NULL;
    }
}

/* Parses "mark=", "out=" and "profile="; returns 0 on success. */
static int parse_args(int argc, char **argv)
{
    int have_mark = 0;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "mark=", 5) == 0) {
            char *end;
            mark_addr = strtoull(argv[i] + 5, &end, 0);
            if (*end != '\0' || end == argv[i] + 5) {
                fprintf(stderr, "insn_count: bad address '%s'\n", argv[i]);
                return -1;
            }
            /* QEMU reports Thumb PCs without bit 0, unlike nm. */
            mark_addr &= ~(uint64_t)1;
            have_mark = 1;
        } else if (strncmp(argv[i], "out=", 4) == 0) {
            out_path = strdup(argv[i] + 4);
        } else if (strncmp(argv[i], "profile=", 8) == 0) {
            profile_path = strdup(argv[i] + 8);
            profile_at_first_mark = calloc(PROFILE_SLOTS, sizeof *profile_count);
            profile_at_last_mark = calloc(PROFILE_SLOTS, sizeof *profile_count);
            if (!profile_at_first_mark || !profile_at_last_mark) {
                fprintf(stderr, "insn_count: out of memory for the profile\n");
                return -1;
            }
        } else if (strncmp(argv[i], "segments=", 9) == 0) {
            segments_path = strdup(argv[i] + 9);
            segments_file = fopen(segments_path, "w");
            profile_at_segment_start = calloc(PROFILE_SLOTS, sizeof *profile_count);
            if (!segments_file || !profile_at_segment_start) {
                fprintf(stderr, "insn_count: cannot set up the segment profile %s\n", segments_path);
                return -1;
            }
        } else {
            fprintf(stderr, "insn_count: unknown argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (!have_mark || !out_path) {
        fprintf(stderr, "insn_count: need mark=0xADDR and out=PATH\n");
        return -1;
    }
    if (profile_path || segments_path) {
        profile_addr = calloc(PROFILE_SLOTS, sizeof *profile_addr);
        profile_count = calloc(PROFILE_SLOTS, sizeof *profile_count);
        if (!profile_addr || !profile_count) {
            fprintf(stderr, "insn_count: out of memory for the profile\n");
            return -1;
        }
    }
    return 0;
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
    (void)info;
    if (parse_args(argc, argv) != 0) {
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_translate);
    qemu_plugin_register_atexit_cb(id, on_exit_write, NULL);
    return 0;
}
