#include "apps/commands.h"
namespace keyval::commands { int wal_main(const std::vector<std::string>&) { return 2; } }
