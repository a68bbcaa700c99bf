// Raft's persistent metadata as a Cap'n Proto struct (schema/storage.capnp Metadata), shared by
// the storage formats (WAL and LMDB metadata records: storage/codec.cc) and the recovered state
// the recovery coordinator hands the raft node (actors/record_batch.cc). Metadata written before
// counted, probation and repairing existed reads them as empty, false and 0.
#pragma once

#include <string>

#include "schema/storage.capnp.h"
#include "storage/status.h"
#include "storage/types.h"

namespace keyval {

inline void set_metadata(schema::Metadata::Builder out, const Metadata& metadata) {
  out.setCurrentTerm(metadata.current_term);
  out.setVotedFor(metadata.voted_for);
  if (!metadata.counted.empty()) {
    auto counted = out.initCounted(static_cast<unsigned>(metadata.counted.size()));
    for (size_t i = 0; i < metadata.counted.size(); ++i) counted.set(static_cast<unsigned>(i), metadata.counted[i]);
  }
  out.setProbation(metadata.probation);
  out.setRepairing(metadata.repairing);
  out.setRepairLastIndex(metadata.repair_last_index);
}

// corruption naming `where` when the counted peers are not ascending node ids.
inline Result<Metadata> get_metadata(schema::Metadata::Reader in, const std::string& where) {
  Metadata metadata{in.getCurrentTerm(), in.getVotedFor()};
  for (uint64_t id : in.getCounted()) {
    if (id == 0 || (!metadata.counted.empty() && id <= metadata.counted.back())) {
      return Status::corruption(where + ": metadata's counted peers are not ascending node ids (" +
                                std::to_string(id) + ")");
    }
    metadata.counted.push_back(id);
  }
  metadata.probation = in.getProbation();
  metadata.repairing = in.getRepairing();
  metadata.repair_last_index = in.getRepairLastIndex();
  return metadata;
}

}  // namespace keyval
