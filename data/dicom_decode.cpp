// DCMTK behind decode_dicom_gray8: dcmdata parses the file from memory and decompresses,
// dcmimgle applies the modality and VOI transforms and renders 8 bits, dcmimage renders colour.
// The checks before DicomImage (pixel data present, one frame, size, length) exist so that each
// refusal names its reason; dcmimgle's own status is the last line of defence.
#include "data/dicom_decode.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "tensor/error.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wdeprecated-copy"
#endif
#include <dcmtk/config/osconfig.h>  // first, as DCMTK requires
#include <dcmtk/dcmdata/dccodec.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmimage/diregist.h>  // colour images (RGB, YBR, palette) for DicomImage
#include <dcmtk/dcmimgle/dcmimage.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace cxr::data {
namespace {

// Once per process: DCMTK's log silenced (every problem becomes the cxr::Error of its file),
// the decoders of the compressed transfer syntaxes registered.
void init_dcmtk() {
  static std::once_flag once;
  std::call_once(once, [] {
    OFLog::configure(OFLogger::OFF_LOG_LEVEL);
    DJDecoderRegistration::registerCodecs();     // JPEG baseline, extended, spectral selection, progressive, lossless
    DJLSDecoderRegistration::registerCodecs();   // JPEG-LS lossless and near-lossless
    DcmRLEDecoderRegistration::registerCodecs();  // RLE lossless
  });
}

// DCMTK 3.6.7 (Debian 12) reads the sample precision of a JPEG fragment by walking its markers
// (DJCodecDecoder::scanJpegDataForBitDepth), and that walk never moves past a TEM marker (FF01):
// a corrupt fragment with one before the frame header hangs the decoder forever. This is the
// same walk, run first, so that such a file is refused instead. It follows DCMTK's steps
// exactly (a segment's length field is trusted, FFFF moves one byte, reserved FF02..FFBF two);
// it returns true where DCMTK's walk would reach FF01 before it stops.
bool dcmtk_precision_scan_hangs(const Uint8* data, Uint32 length) {
  if (data == nullptr) return false;
  const auto u16 = [&](Uint32 at) { return static_cast<unsigned>(data[at] << 8 | data[at + 1]); };
  Uint32 offset = 0;
  while (offset + 4 < length) {
    const unsigned marker = u16(offset);
    if (marker == 0xff01) return true;
    const bool sof = marker >= 0xffc0 && marker <= 0xffcf && marker != 0xffc4 && marker != 0xffc8 && marker != 0xffcc;
    if (sof) return false;  // DCMTK reads the precision here
    if (marker >= 0xffd0 && marker <= 0xffd9) {
      offset += 2;  // RSTn, SOI, EOI: no length
    } else if (marker >= 0xffc4 && marker <= 0xfffe) {
      offset += u16(offset + 2) + 2;  // DHT, JPG, DAC, SOS, DQT, DNL, DRI, DHP, EXP, APPn, JPGn, COM
    } else if (marker == 0xffff) {
      offset += 1;
    } else if (data[offset] == 0xff && data[offset + 1] > 2 && data[offset + 1] <= 0xbf) {
      offset += 2;  // reserved markers
    } else {
      return false;  // DCMTK gives up: not a marker
    }
  }
  return false;
}

// Refuses encapsulated JPEG pixel data that would hang DCMTK's precision scan (above).
void check_jpeg_fragments(DcmDataset& ds, E_TransferSyntax xfer, const std::string& name,
                          const std::string& syntax) {
  if (DcmXfer(xfer).getJPEGProcess8Bit() == 0) return;  // not a dcmjpeg transfer syntax
  DcmElement* element = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, element).bad() || element == nullptr) return;
  DcmPixelSequence* fragments = nullptr;
  if (static_cast<DcmPixelData*>(element)->getEncapsulatedRepresentation(xfer, nullptr, fragments).bad() ||
      fragments == nullptr)
    return;
  for (unsigned long i = 1; i < fragments->card(); ++i) {  // item 0: the offset table
    DcmPixelItem* item = nullptr;
    Uint8* bytes = nullptr;
    if (fragments->getItem(item, i).bad() || item == nullptr || item->getUint8Array(bytes).bad()) continue;
    CXR_CHECK(!dcmtk_precision_scan_hangs(bytes, item->getLength()), "cannot decode image ", name,
              ": corrupt compressed pixel data (", syntax, "): fragment ", i,
              " has a TEM marker (FF01) before its JPEG frame header");
  }
}

// The p-th percentile by nearest rank, p in [0, 100]: sorted[floor or ceil (p / 100 (n - 1))].
template <typename T>
double percentile(std::vector<T>& v, double p, bool round_up) {
  const double r = p / 100.0 * static_cast<double>(v.size() - 1);
  const auto k = static_cast<std::size_t>(round_up ? std::ceil(r) : std::floor(r));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return static_cast<double>(v[k]);
}

template <typename T>
std::pair<double, double> percentile_range(const DiPixel& inter) {
  const T* p = static_cast<const T*>(inter.getData());
  std::vector<T> v(p, p + inter.getCount());
  return {percentile(v, kDicomWindowLowPercentile, false), percentile(v, kDicomWindowHighPercentile, true)};
}

// The 0.5th and 99.5th percentiles of the modality-transformed values dcmimgle holds.
std::pair<double, double> rescaled_percentiles(const DicomImage& image, const std::string& name) {
  const DiPixel* inter = image.getInterData();
  CXR_CHECK(inter != nullptr && inter->getData() != nullptr && inter->getCount() > 0, "cannot decode image ", name,
            ": DICOM: no pixel values after the modality transform");
  switch (inter->getRepresentation()) {
    case EPR_Uint8: return percentile_range<Uint8>(*inter);
    case EPR_Sint8: return percentile_range<Sint8>(*inter);
    case EPR_Uint16: return percentile_range<Uint16>(*inter);
    case EPR_Sint16: return percentile_range<Sint16>(*inter);
    case EPR_Uint32: return percentile_range<Uint32>(*inter);
    case EPR_Sint32: return percentile_range<Sint32>(*inter);
  }
  CXR_FAIL("cannot decode image ", name, ": DICOM: unknown pixel representation after the modality transform");
}

// The bytes as a file DCMTK can open by name: an anonymous memory file (memfd) seen through
// /proc/self/fd; where that is missing, an unlinked-on-exit temporary file.
class MemoryFile {
 public:
  MemoryFile(const std::uint8_t* bytes, std::size_t size, const std::string& name) {
    fd_ = static_cast<int>(::memfd_create("cxr-dicom", MFD_CLOEXEC));
    if (fd_ >= 0 && ::access("/proc/self/fd", R_OK) == 0) {
      path_ = "/proc/self/fd/" + std::to_string(fd_);
    } else {
      if (fd_ >= 0) ::close(fd_);
      const char* tmp = std::getenv("TMPDIR");
      std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/cxr-dicom-XXXXXX";
      fd_ = ::mkstemp(pattern.data());
      CXR_CHECK(fd_ >= 0, "cannot decode image ", name, ": no temporary file for DCMTK (", pattern, ")");
      path_ = pattern;
      unlink_ = true;
    }
    for (std::size_t done = 0; done < size;) {
      const ssize_t n = ::write(fd_, bytes + done, size - done);
      if (n <= 0) {
        release();
        CXR_FAIL("cannot decode image ", name, ": cannot stage it for DCMTK in ", path_);
      }
      done += static_cast<std::size_t>(n);
    }
  }
  ~MemoryFile() { release(); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  void release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (unlink_) ::unlink(path_.c_str());
    unlink_ = false;
  }

  int fd_ = -1;
  std::string path_;
  bool unlink_ = false;
};

std::string get_string(DcmDataset& ds, const DcmTagKey& tag) {
  OFString s;
  return ds.findAndGetOFString(tag, s).good() ? std::string(s.c_str()) : std::string();
}

GrayImage decode(const std::uint8_t* bytes, std::size_t size, const std::string& name, ImageInfo& info) {
  init_dcmtk();
  CXR_CHECK(dcmDataDict.isDictionaryLoaded(), "cannot decode image ", name,
            ": DCMTK's data dictionary is not loaded (is libdcmtk17's dicom.dic installed? DCMDICTPATH)");

  // DCMTK reads from a file, not from memory: only its file reader checks an element's declared
  // length against the bytes left before allocating for it (its memory-buffer reader allocated
  // 3 GB for a 781-byte input: fuzz_dicom_decode). Large values are then loaded into memory while
  // the file is open; each is at most the file's size.
  const MemoryFile mem(bytes, size, name);
  DcmFileFormat file;
  OFCondition read = file.loadFile(OFFilename(mem.path().c_str()), EXS_Unknown, EGL_noChange, DCM_MaxReadLength,
                                   ERM_autoDetect);
  if (read.good()) read = file.loadAllDataIntoMemory();
  CXR_CHECK(read.good(), "cannot decode image ", name, ": not a readable DICOM file (truncated or corrupt?): DCMTK: ",
            read.text());
  DcmDataset& ds = *file.getDataset();

  const E_TransferSyntax xfer = ds.getOriginalXfer();
  const DcmXfer xfer_info(xfer);
  info.format = ImageFormat::dicom;
  info.transfer_syntax_uid = xfer_info.getXferID();
  info.transfer_syntax_name = xfer_info.getXferName();
  const std::string syntax = "transfer syntax " + info.transfer_syntax_uid + " (" + info.transfer_syntax_name + ")";

  if (!ds.tagExistsWithValue(DCM_PixelData)) {
    CXR_CHECK(!ds.tagExists(DCM_FloatPixelData) && !ds.tagExists(DCM_DoubleFloatPixelData), "cannot decode image ",
              name, ": a DICOM with floating-point pixel data (Float / Double Float Pixel Data), not a radiograph");
    CXR_FAIL("cannot decode image ", name, ": a DICOM without Pixel Data (7FE0,0010): not an image (",
             get_string(ds, DCM_SOPClassUID).empty() ? "no SOP Class UID" : "SOP Class " + get_string(ds, DCM_SOPClassUID),
             ")");
  }
  Uint16 rows = 0, cols = 0, samples = 1, bits_allocated = 0, bits_stored = 0, representation = 0;
  ds.findAndGetUint16(DCM_Rows, rows);
  ds.findAndGetUint16(DCM_Columns, cols);
  ds.findAndGetUint16(DCM_SamplesPerPixel, samples);
  ds.findAndGetUint16(DCM_BitsAllocated, bits_allocated);
  ds.findAndGetUint16(DCM_BitsStored, bits_stored);
  ds.findAndGetUint16(DCM_PixelRepresentation, representation);
  Sint32 frames = 1;
  if (ds.tagExistsWithValue(DCM_NumberOfFrames)) ds.findAndGetSint32(DCM_NumberOfFrames, frames);
  info.photometric = get_string(ds, DCM_PhotometricInterpretation);
  info.bits_stored = bits_stored;
  info.channels = samples;
  info.is_signed = representation == 1;
  // (findAndGet* writes 0 when the attribute is absent: the defaults 1 and 0 stay then.)
  if (Float64 v = 0; ds.findAndGetFloat64(DCM_RescaleSlope, v).good()) info.rescale_slope = v;
  if (Float64 v = 0; ds.findAndGetFloat64(DCM_RescaleIntercept, v).good()) info.rescale_intercept = v;
  for (const auto& [tag, source] : {std::pair{DCM_PixelSpacing, "PixelSpacing"},
                                    std::pair{DCM_ImagerPixelSpacing, "ImagerPixelSpacing"}}) {
    Float64 row = 0, col = 0;
    if (ds.findAndGetFloat64(tag, row, 0).good() && ds.findAndGetFloat64(tag, col, 1).good() && row > 0 && col > 0 &&
        std::isfinite(row) && std::isfinite(col)) {
      info.pixel_spacing_row_mm = row;
      info.pixel_spacing_col_mm = col;
      info.pixel_spacing_source = source;
      break;
    }
  }

  CXR_CHECK(rows > 0 && cols > 0, "cannot decode image ", name, ": DICOM Rows x Columns is ", rows, " x ", cols);
  CXR_CHECK(static_cast<std::uint64_t>(rows) * cols <= kMaxImagePixels, "cannot decode image ", name,
            ": its header says ", cols, " x ", rows, " pixels, more than the ", kMaxImagePixels, "-pixel limit");
  CXR_CHECK(frames <= 1, "cannot decode image ", name, ": a multi-frame DICOM (", frames,
            " frames): a series or a cine loop, not one radiograph; only single-frame files are read");
  CXR_CHECK(samples == 1 || samples == 3, "cannot decode image ", name, ": DICOM Samples per Pixel ", samples,
            " (1 or 3 expected)");
  CXR_CHECK(bits_allocated == 8 || bits_allocated == 16, "cannot decode image ", name, ": DICOM Bits Allocated ",
            bits_allocated, " (8 or 16 expected)");
  CXR_CHECK(bits_stored >= 1 && bits_stored <= bits_allocated, "cannot decode image ", name, ": DICOM Bits Stored ",
            bits_stored, " with Bits Allocated ", bits_allocated);

  CXR_CHECK(std::isfinite(info.rescale_slope) && std::isfinite(info.rescale_intercept) && info.rescale_slope != 0 &&
                std::abs(info.rescale_slope) <= 1e6 && std::abs(info.rescale_intercept) <= 1e9,
            "cannot decode image ", name, ": DICOM Rescale Slope ", info.rescale_slope, " / Intercept ",
            info.rescale_intercept, " (a finite, non-zero slope up to 1e6 and an intercept up to 1e9 expected)");

  if (xfer_info.isEncapsulated()) {
    CXR_CHECK(DcmCodecList::canChangeCoding(xfer, EXS_LittleEndianExplicit), "cannot decode image ", name,
              ": its pixel data is compressed in ", syntax,
              ", which DCMTK (free edition) has no decoder for; DCMTK decodes JPEG baseline / extended / lossless, "
              "JPEG-LS and RLE");
    check_jpeg_fragments(ds, xfer, name, syntax);
    const OFCondition c = ds.chooseRepresentation(EXS_LittleEndianExplicit, nullptr);
    CXR_CHECK(c.good() && ds.canWriteXfer(EXS_LittleEndianExplicit), "cannot decode image ", name,
              ": corrupt compressed pixel data (", syntax, "): DCMTK: ", c.text());
  }
  DcmElement* pixel_data = nullptr;
  CXR_CHECK(ds.findAndGetElement(DCM_PixelData, pixel_data).good() && pixel_data != nullptr, "cannot decode image ",
            name, ": DICOM Pixel Data unreadable");
  std::uint64_t expected = static_cast<std::uint64_t>(rows) * cols * samples * (bits_allocated / 8);
  const std::string native_photometric = get_string(ds, DCM_PhotometricInterpretation);  // after decompression
  if (native_photometric == "YBR_FULL_422" || native_photometric == "YBR_PARTIAL_422") expected = expected / 3 * 2;
  CXR_CHECK(pixel_data->getLength() >= expected, "cannot decode image ", name, ": truncated DICOM pixel data: ",
            pixel_data->getLength(), " bytes, ", cols, " x ", rows, " x ", samples, " samples of ", bits_allocated,
            " bits need ", expected);

  DicomImage image(&ds, xfer_info.isEncapsulated() ? EXS_LittleEndianExplicit : xfer, 0UL, 0UL, 1UL);
  CXR_CHECK(image.getStatus() == EIS_Normal, "cannot decode image ", name, ": DCMTK cannot render it (",
            info.photometric, ", ", bits_stored, " bits stored, ", syntax, "): ",
            DicomImage::getString(image.getStatus()));
  const auto w = static_cast<int>(image.getWidth()), h = static_cast<int>(image.getHeight());
  CXR_CHECK(w == cols && h == rows, "cannot decode image ", name, ": DCMTK rendered ", w, " x ", h, " for ", cols,
            " x ", rows);

  GrayImage out;
  out.width = w;
  out.height = h;
  const std::size_t n = static_cast<std::size_t>(w) * h;
  if (image.isMonochrome()) {
    DcmSequenceOfItems* voi_luts = nullptr;
    const bool has_voi_lut = ds.findAndGetSequence(DCM_VOILUTSequence, voi_luts).good() && voi_luts != nullptr &&
                             voi_luts->card() > 0;
    const bool identity_modality = info.rescale_slope == 1 && info.rescale_intercept == 0 &&
                                   !ds.tagExists(DCM_ModalityLUTSequence);
    if (has_voi_lut && image.setVoiLut(0)) {
      info.window_source = WindowSource::voi_lut;
    } else if (image.getWindowCount() > 0 && image.setWindow(0)) {
      info.window_source = WindowSource::file_window;
      image.getWindow(info.window_center, info.window_width);
    } else if (bits_allocated == 8 && identity_modality) {
      // The stored values as they are (signed -128..127 shifted to 0..255), MONOCHROME1 inverted:
      // what the PNG or JPEG of the same 8-bit image gives. Done here, exactly (dcmimgle's
      // "no VOI" rendering stretches the range it finds).
      const DiPixel* inter = image.getInterData();
      CXR_CHECK(inter != nullptr && inter->getData() != nullptr && inter->getCount() >= n, "cannot decode image ",
                name, ": DICOM: no pixel values");
      out.pixels.resize(n);
      const bool invert = image.getPhotometricInterpretation() == EPI_Monochrome1;
      for (std::size_t i = 0; i < n; ++i) {
        int v = 0;
        switch (inter->getRepresentation()) {
          case EPR_Uint8: v = static_cast<const Uint8*>(inter->getData())[i]; break;
          case EPR_Sint8: v = static_cast<const Sint8*>(inter->getData())[i] + 128; break;
          case EPR_Uint16: v = static_cast<const Uint16*>(inter->getData())[i]; break;
          case EPR_Sint16: v = static_cast<const Sint16*>(inter->getData())[i] + 128; break;
          default: CXR_FAIL("cannot decode image ", name, ": DICOM: unexpected representation of 8-bit pixels");
        }
        v = std::clamp(v, 0, 255);
        out.pixels[i] = static_cast<std::uint8_t>(invert ? 255 - v : v);
      }
      info.window_source = WindowSource::none;
      info.inverted = invert;
      return out;
    } else {
      const auto [lo, hi] = rescaled_percentiles(image, name);
      info.window_center = (lo + hi) / 2 + 0.5;
      info.window_width = hi - lo + 1;
      CXR_CHECK(image.setWindow(info.window_center, info.window_width), "cannot decode image ", name,
                ": DCMTK refused the percentile window");
      info.window_source = WindowSource::percentile;
    }
    info.inverted = image.getPhotometricInterpretation() == EPI_Monochrome1;
    const auto* p = static_cast<const std::uint8_t*>(image.getOutputData(8, 0, 0));
    CXR_CHECK(p != nullptr && image.getOutputDataSize(8) == n, "cannot decode image ", name,
              ": DCMTK rendered no 8-bit pixels");
    out.pixels.assign(p, p + n);
  } else {
    const auto* p = static_cast<const std::uint8_t*>(image.getOutputData(8, 0, 0));  // R G B interleaved
    CXR_CHECK(p != nullptr && image.getOutputDataSize(8) == 3 * n, "cannot decode image ", name,
              ": DCMTK rendered no 8-bit colour pixels (", info.photometric, ")");
    out.pixels.resize(n);
    for (std::size_t i = 0; i < n; ++i)  // the PNG path's (stb's) luma weights
      out.pixels[i] = static_cast<std::uint8_t>((p[3 * i] * 77u + p[3 * i + 1] * 150u + p[3 * i + 2] * 29u) >> 8);
  }
  return out;
}

}  // namespace

GrayImage decode_dicom_gray8(const std::uint8_t* bytes, std::size_t size, const std::string& name, ImageInfo* info) {
  CXR_CHECK(size > 0, "image file ", name, " is empty");
  ImageInfo local;
  try {
    GrayImage img = decode(bytes, size, name, local);
    if (info) *info = std::move(local);
    return img;
  } catch (const std::bad_alloc&) {
    CXR_FAIL("cannot decode image ", name, ": DICOM: out of memory while decoding (corrupt lengths?)");
  }
}

}  // namespace cxr::data
