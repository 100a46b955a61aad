// libjpeg-turbo behind decode_jpeg_gray8: header first (size limit, colour space), then the
// decode to TJPF_GRAY with warnings treated as errors.
#include "data/jpeg_decode.h"

#include <turbojpeg.h>

#include <memory>

#include "tensor/error.h"

namespace cxr::data {
namespace {

// The sample precision (8, 12, 16) and component count of the first SOF marker, read here so
// that a 12-bit file gets a clear refusal rather than libjpeg's "Unsupported JPEG data
// precision 12". {0, 0} when no SOF is found before the first scan (libjpeg then says why).
struct FrameHeader {
  int precision = 0, components = 0;
  bool lossless = false;  // SOF3 / SOF7 / SOF11 / SOF15: the lossless process
};

FrameHeader read_frame_header(const std::uint8_t* p, std::size_t n) {
  std::size_t k = 2;  // after SOI
  while (k + 4 <= n) {
    if (p[k] != 0xFF) return {};
    std::uint8_t m = p[k + 1];
    if (m == 0xFF) {  // fill byte
      ++k;
      continue;
    }
    if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {  // markers without a length
      k += 2;
      continue;
    }
    if (m == 0xD9 || m == 0xDA) return {};  // EOI, SOS: no frame header before the scan
    const std::size_t length = static_cast<std::size_t>(p[k + 2]) << 8 | p[k + 3];
    const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
    if (sof && length >= 8 && k + 10 <= n) {
      FrameHeader h;
      h.precision = p[k + 4];
      h.components = p[k + 9];
      h.lossless = m == 0xC3 || m == 0xC7 || m == 0xCB || m == 0xCF;
      return h;
    }
    k += 2 + length;
  }
  return {};
}

const char* colorspace_name(int cs) {
  switch (cs) {
    case TJCS_RGB: return "RGB";
    case TJCS_YCbCr: return "YCbCr";
    case TJCS_GRAY: return "GRAY";
    case TJCS_CMYK: return "CMYK";
    case TJCS_YCCK: return "YCCK";
    default: return "unknown";
  }
}

}  // namespace

GrayImage decode_jpeg_gray8(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                            ImageInfo* info) {
  CXR_CHECK(size > 0, "image file ", name, " is empty");
  const FrameHeader frame = read_frame_header(bytes, size);
  CXR_CHECK(frame.precision == 0 || (frame.precision == 8 && !frame.lossless), "cannot decode image ", name,
            ": a ", frame.precision, "-bit", frame.lossless ? " lossless" : "",
            " JPEG; libjpeg-turbo 2.1's TurboJPEG API decodes 8-bit lossy JPEG only (convert it to an "
            "8-bit JPEG or a 16-bit PNG)");

  std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitDecompress(), tjDestroy);
  CXR_CHECK(tj != nullptr, "cannot decode image ", name, ": libjpeg-turbo: ", tjGetErrorStr2(nullptr));
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  const auto jpeg_size = static_cast<unsigned long>(size);
  CXR_CHECK(tjDecompressHeader3(tj.get(), bytes, jpeg_size, &w, &h, &subsamp, &colorspace) == 0,
            "cannot decode image ", name, ": corrupt JPEG header: ", tjGetErrorStr2(tj.get()));
  CXR_CHECK(colorspace != TJCS_CMYK && colorspace != TJCS_YCCK, "cannot decode image ", name, ": a ",
            colorspace_name(colorspace), " JPEG (print colour); only gray, YCbCr and RGB JPEGs are read");
  CXR_CHECK(w > 0 && h > 0, "cannot decode image ", name, ": corrupt JPEG header: ", w, " x ", h, " pixels");
  CXR_CHECK(static_cast<std::uint64_t>(w) * static_cast<std::uint64_t>(h) <= kMaxImagePixels,
            "cannot decode image ", name, ": its header says ", w, " x ", h, " pixels, more than the ",
            kMaxImagePixels, "-pixel limit (corrupt file?)");

  GrayImage img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<std::size_t>(w) * h);
  // STOPONWARNING: a truncated or damaged file is an error, not an image with a grey tail.
  // LIMITSCANS: a progressive file of thousands of tiny scans (a decoding-time bomb) is refused.
  const int flags = TJFLAG_ACCURATEDCT | TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;
  const int rc = tjDecompress2(tj.get(), bytes, jpeg_size, img.pixels.data(), w, 0, h, TJPF_GRAY, flags);
  if (rc != 0) {
    const bool warning = tjGetErrorCode(tj.get()) == TJERR_WARNING;
    CXR_FAIL("cannot decode image ", name, ": ", warning ? "truncated or corrupt JPEG data" : "corrupt JPEG",
             ": libjpeg-turbo: ", tjGetErrorStr2(tj.get()));
  }
  if (info) {
    info->format = ImageFormat::jpeg;
    info->bits_stored = 8;
    info->channels = colorspace == TJCS_GRAY ? 1 : 3;
    info->photometric = colorspace_name(colorspace);
  }
  return img;
}

}  // namespace cxr::data
