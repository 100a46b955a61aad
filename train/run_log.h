// The files a training run writes as it goes, besides its checkpoints:
//   RUN/log.txt       every message of the run (RunLog::say also shows it above the progress bar)
//   RUN/metrics.csv   one row per epoch (MetricsCsv)
// (RUN/metrics.jsonl, one line per step, is eval/progress.h's StepLog.)
#pragma once

#include <fstream>
#include <string>
#include <vector>

#include "eval/progress.h"

namespace cxr {

struct EpochRecord;

class RunLog {
 public:
  // append: a resumed run adds to the log of the run it continues. path "": no file.
  RunLog(const std::string& path, bool append, Progress& progress);
  void say(const std::string& text);   // on the console (above the progress bar) and in the log
  void line(const std::string& text);  // in the log only

 private:
  std::string path_;
  std::ofstream file_;
  Progress& progress_;
};

class MetricsCsv {
 public:
  // A new file gets the header (epoch, step, lr, losses, mean AUROC / AP, speed, per-class AUROC);
  // append: rows go after those of the run being resumed. path "": no file.
  MetricsCsv(const std::string& path, bool append, const std::vector<std::string>& class_names);
  void write(const EpochRecord& r);

 private:
  std::string path_;
  std::ofstream file_;
};

}  // namespace cxr
