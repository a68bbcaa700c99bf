// Reading, writing and checking D/IDENTITY (see node_identity.h).
#include "storage/node_identity.h"

#include "storage/decimal.h"

#include <algorithm>
#include <sstream>

namespace keyval {
namespace {

constexpr size_t identity_bytes_max = 4096;
constexpr size_t cluster_name_max = 64;
const char* const format_line = "keyval-identity 1";

std::string join(const std::vector<uint64_t>& ids) {
  std::string text;
  for (uint64_t id : ids) text += (text.empty() ? "" : ",") + std::to_string(id);
  return text;
}

std::string render(const NodeIdentity& identity) {
  std::string text = std::string(format_line) + "\ncluster " + identity.cluster + "\nnode " +
                     std::to_string(identity.node_id) + "\n";
  if (!identity.created.empty()) text += "created " + identity.created + "\n";
  if (!identity.voters.empty()) text += "voters " + join(identity.voters) + "\n";
  return text;
}

bool parse_number(const std::string& text, uint64_t* value) {
  auto parsed = parse_decimal(text);
  if (parsed) *value = *parsed;
  return parsed.has_value();
}

Result<NodeIdentity> parse(const std::string& text, const std::string& path) {
  NodeIdentity identity;
  std::istringstream lines(text);
  std::string line;
  size_t number = 0;
  bool seen_format = false, seen_cluster = false, seen_node = false, seen_voters = false;
  auto bad = [&](const std::string& what) {
    return Status::corruption(path + " line " + std::to_string(number) + ": " + what);
  };
  while (std::getline(lines, line)) {
    ++number;
    if (line.empty()) continue;
    auto space = line.find(' ');
    std::string name = line.substr(0, space), value = space == std::string::npos ? "" : line.substr(space + 1);
    if (number == 1) {
      if (line != format_line) return bad("expected '" + std::string(format_line) + "', found '" + line + "'");
      seen_format = true;
    } else if (name == "cluster") {
      identity.cluster = value;
      seen_cluster = true;
    } else if (name == "node") {
      if (!parse_number(value, &identity.node_id)) return bad("node id is not a number: '" + value + "'");
      seen_node = true;
    } else if (name == "voters") {
      std::istringstream ids(value);
      std::string id;
      while (std::getline(ids, id, ',')) {
        uint64_t voter = 0;
        if (!parse_number(id, &voter)) return bad("voter id is not a number: '" + id + "'");
        identity.voters.push_back(voter);
      }
      seen_voters = true;
    } else if (name == "created") {
      if (value != "bootstrap" && value != "join") return bad("created must be bootstrap or join: '" + value + "'");
      identity.created = value;
    } else {
      return bad("unknown field '" + name + "'");
    }
  }
  // Older directories name their voters; newer ones say how they were created.
  if (!seen_format || !seen_cluster || !seen_node || (!seen_voters && identity.created.empty())) {
    return Status::corruption(path + ": incomplete (needs the format line, cluster, node, and voters or created)");
  }
  Status valid = check_identity(identity);
  if (!valid.is_ok()) return Status::corruption(path + ": " + valid.message());
  return identity;
}

}  // namespace

std::string NodeIdentity::describe() const {
  return "node " + std::to_string(node_id) + " of cluster " + cluster +
         (voters.empty() ? std::string() : " (voters " + join(voters) + ")");
}

Status check_identity(const NodeIdentity& identity) {
  if (identity.cluster.empty() || identity.cluster.size() > cluster_name_max ||
      !std::all_of(identity.cluster.begin(), identity.cluster.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
               c == '-';
      })) {
    return Status::invalid_argument("cluster name '" + identity.cluster + "' must be 1.." +
                                    std::to_string(cluster_name_max) + " characters of [A-Za-z0-9._-]");
  }
  if (identity.node_id == 0) return Status::invalid_argument("node id must not be 0");
  if (!std::is_sorted(identity.voters.begin(), identity.voters.end()) ||
      std::adjacent_find(identity.voters.begin(), identity.voters.end()) != identity.voters.end()) {
    return Status::invalid_argument("voters must be distinct and sorted: " + join(identity.voters));
  }
  if (std::count(identity.voters.begin(), identity.voters.end(), 0)) return Status::invalid_argument("voter id 0");
  if (!identity.voters.empty() && !std::binary_search(identity.voters.begin(), identity.voters.end(), identity.node_id)) {
    return Status::invalid_argument("node " + std::to_string(identity.node_id) + " is not among the voters " +
                                    join(identity.voters));
  }
  return Status::ok();
}

Result<NodeIdentity> read_identity(Env& env, const std::string& directory) {
  const std::string path = directory + "/" + identity_file_name;
  if (!env.exists(path)) return Status::not_found(path + " does not exist");
  KV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env.open_file(path, OpenMode::read_only));
  KV_ASSIGN_OR_RETURN(uint64_t size, file->size());
  if (size > identity_bytes_max) return Status::corruption(path + ": " + std::to_string(size) + " bytes, too large");
  std::string text(size, '\0');
  KV_ASSIGN_OR_RETURN(size_t read, file->read_at(0, reinterpret_cast<uint8_t*>(text.data()), text.size()));
  text.resize(read);
  return parse(text, path);
}

Status claim_data_directory(Env& env, const std::string& directory, const NodeIdentity& identity) {
  KV_RETURN_IF_ERROR(check_identity(identity));
  KV_RETURN_IF_ERROR(env.create_dir(directory));
  auto existing = read_identity(env, directory);
  if (existing.is_ok()) {
    const NodeIdentity& found = existing.value();
    // The members change over time (the log holds them): only cluster and node id identify.
    if (found.cluster == identity.cluster && found.node_id == identity.node_id) return Status::ok();
    return Status::invalid_argument("data directory " + directory + " belongs to " + found.describe() +
                                    ", not to " + identity.describe());
  }
  if (existing.status().code() != Code::not_found) return existing.status();
  KV_ASSIGN_OR_RETURN(std::vector<std::string> names, env.list(directory));
  for (const std::string& name : names) {
    if (name == "wal" || name == "lmdb") {
      return Status::invalid_argument("data directory " + directory + " holds data (" + name + "/) but no " +
                                      identity_file_name + ": refusing to guess which node it belongs to");
    }
  }
  const std::string path = directory + "/" + identity_file_name;
  const std::string temporary = path + ".tmp";
  const std::string text = render(identity);
  if (env.exists(temporary)) KV_RETURN_IF_ERROR(env.remove(temporary));
  {
    KV_ASSIGN_OR_RETURN(std::unique_ptr<File> file, env.open_file(temporary, OpenMode::create_new));
    KV_RETURN_IF_ERROR(file->write_at(0, reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    KV_RETURN_IF_ERROR(file->sync_data());
  }
  KV_RETURN_IF_ERROR(env.rename(temporary, path));
  return env.sync_dir(directory);
}

Result<NodeIdentity> check_data_directory(Env& env, const std::string& directory, const std::string& cluster,
                                          uint64_t node_id) {
  if (!env.exists(directory)) return Status::not_found("data directory " + directory + " does not exist");
  auto found = read_identity(env, directory);
  if (!found.is_ok()) {
    if (found.status().code() != Code::not_found) return found.status();
    return Status::not_found("data directory " + directory + " holds no " + identity_file_name +
                             " (it was never created for a node)");
  }
  if (found->cluster != cluster || found->node_id != node_id) {
    NodeIdentity wanted;
    wanted.cluster = cluster;
    wanted.node_id = node_id;
    return Status::invalid_argument("data directory " + directory + " belongs to " + found->describe() +
                                    ", not to " + wanted.describe());
  }
  return found;
}

}  // namespace keyval
