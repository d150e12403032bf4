/* A shared object without melforge_plugin_init. */
int not_the_entry_symbol(void);
int not_the_entry_symbol(void) { return 42; }
