// `keyval node --config FILE`: the same settings as the flags, one "name = value" per line.
// Blank lines and text after '#' are ignored; blanks around names and values are trimmed. An
// unknown name, a line without '=', or a name without a value is refused naming the file and
// the line. A name given twice keeps its last value. Flags win over the file (node_command.cc).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "storage/status.h"

namespace keyval {

// `text` read from `name` (for messages); `allowed`: the setting names (the flags without "--").
Result<std::map<std::string, std::string>> parse_config_text(std::string_view text, const std::string& name,
                                                             const std::vector<std::string>& allowed);
// The file at `path`, parsed; invalid_argument when it cannot be read.
Result<std::map<std::string, std::string>> read_config_file(const std::string& path,
                                                            const std::vector<std::string>& allowed);

}  // namespace keyval
