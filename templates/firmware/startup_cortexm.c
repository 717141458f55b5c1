/*
 * startup_cortexm.c - minimal bare-metal startup for Cortex-M (M3, M4, M7, M33, M55).
 *
 * Newlib ships no startup code for these cores, and the build links with
 * -nostartfiles (rdimon's own crt0 expects a semihosting heap setup we do
 * not want), so this file provides what runs between reset and main():
 * the vector table and Reset_Handler. It works the same under QEMU
 * (mps2-an385, mps2-an386, mps2-an500, mps2-an505, mps3-an547) and on real
 * boards. On mps2-an505 the Cortex-M33 boots Secure with its vector table at
 * 0x10000000; the target's memory map (targets/cortex-m33.toml) links the
 * firmware there, and nothing here needs to know: the SAU stays disabled, so
 * all memory is Secure.
 *
 * Symbols it needs from the linker script (link.ld.jinja):
 *   __stack_top                     initial stack pointer (top of RAM)
 *   __data_load__                   where .data's initial values lie in flash
 *   __data_start__, __data_end__    .data in RAM
 *   __bss_start__, __bss_end__      .bss in RAM
 */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __stack_top;
extern const uint32_t __data_load__;
extern uint32_t __data_start__;
extern uint32_t __data_end__;
extern uint32_t __bss_start__;
extern uint32_t __bss_end__;

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void __libc_init_array(void);
void _init(void);
void _fini(void);

/*
 * Every exception without its own handler stops here. In the emulator build
 * (semihosting) a bkpt taken in HardFault cannot escalate further, so QEMU
 * reports a lock-up and exits (status 134): a cheap, unmistakable crash
 * signal. The board image (HORQ_BOARD_IMAGE) has no debugger to catch a
 * bkpt (it would be a second fault): its own handlers print the fault on
 * the UART, and anything else spins here.
 */
void Default_Handler(void)
{
#ifndef HORQ_BOARD_IMAGE
    __asm__ volatile("bkpt #0");
#endif
    for (;;) {
    }
}

/* Weak, so firmware can supply a real handler under the same name. */
void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void HardFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void MemManage_Handler(void) __attribute__((weak, alias("Default_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SecureFault_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

/* Entry 0 is a data pointer (the stack), the rest are code pointers. */
typedef union {
    void (*handler)(void);
    uint32_t *stack;
} vector_entry;

/*
 * The 16 architectural entries only: generated firmware enables no
 * peripheral interrupt, so no IRQ entries are needed. The linker script
 * places .isr_vector at the start of flash, where VTOR points at reset.
 */
__attribute__((section(".isr_vector"), used))
const vector_entry horq_vector_table[16] = {
    { .stack = &__stack_top },
    { .handler = Reset_Handler },
    { .handler = NMI_Handler },
    { .handler = HardFault_Handler },
    { .handler = MemManage_Handler },
    { .handler = BusFault_Handler },
    { .handler = UsageFault_Handler },
    { .handler = SecureFault_Handler }, /* reserved before Armv8-M */
    { 0 },
    { 0 },
    { 0 },
    { .handler = SVC_Handler },
    { .handler = DebugMon_Handler },
    { 0 },
    { .handler = PendSV_Handler },
    { .handler = SysTick_Handler },
};

/*
 * Grant full access to coprocessors CP10 and CP11 (the FPU, and on the M55
 * also the Helium/MVE unit, which shares the FP registers). At reset they
 * are disabled, and the first float instruction would raise a UsageFault
 * (a lock-up under QEMU). Compiled out for cores built without an FPU.
 */
static void enable_fpu(void)
{
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    volatile uint32_t *const cpacr = (volatile uint32_t *)0xE000ED88u;
    *cpacr |= (0xFu << 20);
    /* The write must complete, and the pipeline refetch, before the next
     * instruction may be a float instruction. */
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
}

/*
 * newlib's __libc_init_array and exit() (through __libc_fini_array) call
 * _init and _fini, which normally come from crti.o; -nostartfiles drops
 * that file, so empty ones are supplied here. Constructors themselves run
 * from the .init_array table that the linker script keeps.
 */
void _init(void)
{
}

void _fini(void)
{
}

void Reset_Handler(void)
{
    /* First of all: the compiler may turn the loops below into calls to
     * newlib's memcpy/memset, and nothing promises those avoid FP/MVE
     * registers. Enabling the FPU touches no RAM, so it can go first. */
    enable_fpu();
    /* Initialised globals live in flash; RAM holds garbage after reset. */
    const uint32_t *src = &__data_load__;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    /* C requires zero-initialised globals; RAM is not zeroed by hardware. */
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
    /* Constructors may use globals, so they run after .data and .bss. */
    __libc_init_array();
#ifndef HORQ_BOARD_IMAGE
    /* exit() flushes stdio and, with rdimon, reports the status to the
     * host through semihosting, so QEMU exits with main's return value. */
    exit(main());
#else
    /* A board has nowhere to return to. */
    (void)main();
    for (;;) {
    }
#endif
}
