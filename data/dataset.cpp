// Dataset::load: find the metadata files and the image folders of an NIH-format folder.
#include "data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <unordered_map>

#include "tensor/error.h"

namespace fs = std::filesystem;

namespace cxr::data {

namespace {

// DIR/images and every DIR/images_*/images (Kaggle), in name order.
std::vector<std::string> find_image_dirs(const fs::path& root) {
  std::vector<std::string> dirs;
  std::error_code ec;
  if (fs::is_directory(root / "images", ec)) dirs.push_back((root / "images").string());
  std::vector<std::string> kaggle;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("images_", 0) == 0 && fs::is_directory(entry.path() / "images", ec))
      kaggle.push_back((entry.path() / "images").string());
  }
  std::sort(kaggle.begin(), kaggle.end());
  dirs.insert(dirs.end(), kaggle.begin(), kaggle.end());
  return dirs;
}

}  // namespace

void Dataset::add(ImageRecord record, std::string path) {
  meta.by_name.emplace(record.name, size());
  meta.images.push_back(std::move(record));
  if (path.empty()) ++missing_;
  paths_.push_back(std::move(path));
}

Dataset Dataset::load(const std::string& dir, Report& report) {
  const fs::path root(dir);
  std::error_code ec;
  CXR_CHECK(fs::is_directory(root, ec), "data folder ", dir, " does not exist or is not a folder");
  Dataset ds;
  ds.root = dir;
  for (const char* name : {"Data_Entry_2017_v2020.csv", "Data_Entry_2017.csv"}) {
    if (fs::is_regular_file(root / name, ec)) {
      ds.data_entry_file = (root / name).string();
      break;
    }
  }
  CXR_CHECK(!ds.data_entry_file.empty(), "data folder ", dir,
            " has neither Data_Entry_2017_v2020.csv nor Data_Entry_2017.csv");
  read_data_entry_file(ds.data_entry_file, ds.meta, report);
  CXR_CHECK(!ds.meta.images.empty(), "the data set is empty: ", ds.data_entry_file, " has no usable row (",
            ds.meta.malformed_rows, " malformed rows skipped)");

  if (fs::is_regular_file(root / "BBox_List_2017.csv", ec)) {
    ds.bbox_file = (root / "BBox_List_2017.csv").string();
    read_bbox_list_file(ds.bbox_file, ds.meta, report);
  }
  if (fs::is_regular_file(root / "train_val_list.txt", ec))
    ds.train_val_list = read_image_list_file((root / "train_val_list.txt").string());
  if (fs::is_regular_file(root / "test_list.txt", ec))
    ds.test_list = read_image_list_file((root / "test_list.txt").string());

  // One directory listing instead of 112,120 stat calls.
  ds.image_dirs = find_image_dirs(root);
  std::unordered_map<std::string, std::string> found;
  for (const auto& d : ds.image_dirs)
    for (const auto& entry : fs::directory_iterator(d, ec))
      found.emplace(entry.path().filename().string(), entry.path().string());
  ds.paths_.resize(ds.meta.images.size());
  for (std::size_t i = 0; i < ds.meta.images.size(); ++i) {
    const auto it = found.find(ds.meta.images[i].name);
    if (it != found.end()) ds.paths_[i] = it->second;
    else ++ds.missing_;
  }
  return ds;
}

}  // namespace cxr::data
