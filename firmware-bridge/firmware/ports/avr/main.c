/* The AVR firmware's entry: the core's main loop (port_init, fl_boot, then serve the line). */
#include "core/fl.h"

int main(void) {
    fl_run();
    return 0;
}
