#include "apps/commands.h"
namespace keyval::commands { int bench_wal_main(const std::vector<std::string>&) { return 2; }
int bench_main(const std::vector<std::string>& args) { if (!args.empty() && args[0]=="store") return bench_store_main(std::vector<std::string>(args.begin()+1, args.end())); return 2; } }
