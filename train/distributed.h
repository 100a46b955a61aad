// The data-parallel parts of a training run (docs/distributed.md), as PyTorch DDP has them, on
// a dist::Communicator (single process: each is the identity and costs nothing):
//   broadcast_state     rank 0's weights and buffers everywhere (start, --resume, --init-from)
//   agree_on_step       before each step: the global batch's rows, boxes and present labels (the loss's
//                       denominators), this rank's first row in it (dropout masks), and
//                       whether any rank was interrupted (every rank stops at the same step)
//   gather_inference    (eval/gather_inference.h) each rank's validation predictions, in rank
//                       order: the whole split, as one process would have evaluated it
//   check_replicas      every rank still holds the same weights (a bit-exact hash)
#pragma once

#include <cstdint>
#include <string>

#include "dist/communicator.h"
#include "eval/gather_inference.h"
#include "layers/module.h"

namespace cxr {

void broadcast_state(dist::Communicator& comm, Module& model);
// Rank 0's buffers (batch-norm running statistics) everywhere. Without --sync-bn each rank's
// running statistics follow its own batches; DDP (broadcast_buffers=True) overwrites them with
// rank 0's before every forward, so they are rank 0's chain of updates. Broadcasting them once
// before validation gives the same values (training never reads them).
void broadcast_buffers(dist::Communicator& comm, Module& model);

struct StepAgreement {
  std::int64_t rows = 0;       // of the global batch
  std::int64_t row_begin = 0;  // this rank's first row in it
  double boxes = 0;            // Σ box_mask over the global batch
  double labels = 0;           // Σ label_mask over the global batch (the masked BCE's divisor)
  int signal = 0;              // an interrupting signal seen by any rank (the largest), else 0
};
StepAgreement agree_on_step(dist::Communicator& comm, std::int64_t rows, double boxes, int signal,
                            double labels = 0);
// Whether any rank saw an interrupting signal (the largest one), else 0.
int agree_on_signal(dist::Communicator& comm, int signal);

// An error naming the first rank whose weights and buffers differ from rank 0's (`when`: "after
// epoch 3").
void check_replicas(dist::Communicator& comm, Module& model, const std::string& when);

}  // namespace cxr
