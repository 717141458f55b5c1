"""The board image's side of the host: its UART line protocol, reading it from a serial port (a board's
tty, or the pseudo-terminal of QEMU running the same image), running the image in QEMU, and flashing it."""
