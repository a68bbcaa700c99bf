#include "apps/commands.h"
namespace keyval::commands { int bench_store_main(const std::vector<std::string>&) { return 2; } }
