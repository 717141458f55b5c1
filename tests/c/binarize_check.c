/* Reads groups of floats from stdin, binarizes them with the C kernels and prints
 * the betas (float bits) and packed planes, then XOR-popcounts of word pairs.
 * Input: groups rows cols order pad_count, the values, then pairs count and the pairs.
 * tests/test_kernels.py compares every number with the numpy reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "horq_kernels.h"

static float values[4096];
static float betas[8];
static uint32_t planes[8 * 4096];

int main(void)
{
    int groups, rows, cols, order, pad_count, pairs;
    if (scanf("%d %d %d %d %d", &groups, &rows, &cols, &order, &pad_count) != 5 || rows * cols > 4096) {
        return 2;
    }
    const int words = HORQ_WORDS_FOR(cols);
    for (int g = 0; g < groups; ++g) {
        for (int i = 0; i < rows * cols; ++i) {
            unsigned long bits;
            if (scanf("%lx", &bits) != 1) {
                return 3;
            }
            uint32_t b32 = (uint32_t)bits;
            memcpy(&values[i], &b32, sizeof b32);
        }
        horq_binarize_rows(values, rows, cols, pad_count, order, NULL, betas, planes, rows * words);
        printf("g");
        for (int k = 0; k < order; ++k) {
            uint32_t b32;
            memcpy(&b32, &betas[k], sizeof b32);
            printf(" %08lx", (unsigned long)b32);
        }
        for (int i = 0; i < order * rows * words; ++i) {
            printf(" %08lx", (unsigned long)planes[i]);
        }
        printf("\n");
    }
    if (scanf("%d", &pairs) != 1) {
        return 4;
    }
    for (int i = 0; i < pairs; ++i) {
        unsigned long a, b;
        if (scanf("%lx %lx", &a, &b) != 2) {
            return 5;
        }
        const uint32_t a32 = (uint32_t)a, b32 = (uint32_t)b;
        printf("p %ld\n", (long)horq_xor_popcount(&a32, &b32, 1));
    }
    return 0;
}
