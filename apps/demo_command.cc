#include "apps/commands.h"
namespace keyval::commands { int demo_main(const std::vector<std::string>&) { return 2; } }
