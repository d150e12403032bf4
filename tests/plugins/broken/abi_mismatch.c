/* Built with -DMF_PLUGIN_ABI_VERSION=999: an SDK from the future. */
#include "melforge/plugin.h"
static mf_status init(const mf_registrar *reg) { (void)reg; return MF_OK; }
MF_PLUGIN_ENTRY(init)
