// Regressions found by the libFuzzer targets of fuzz/ (scripts/fuzz): each case is the
// input that failed, reduced to the cell that mattered, and checks the clean behaviour the
// reader now has (a reported, skipped row or a cxr::Error naming the file; never a crash or
// a silently wrong value).
#include <doctest/doctest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "data/image_io.h"
#include "data/metadata.h"
#include "tensor/error.h"

using namespace cxr;
using namespace cxr::data;

namespace {

const char* kHeader =
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n";

Metadata parse(const std::string& text, Report& report) {
  Metadata m;
  std::istringstream in(text);
  read_data_entry(in, "fuzz.csv", m, report);
  return m;
}

// A PNG file that is only a signature and an IHDR chunk (CRC included): enough for stb's
// header probe.
std::vector<std::uint8_t> png_header_only(std::uint32_t width, std::uint32_t height) {
  std::vector<std::uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13};
  std::vector<std::uint8_t> chunk = {'I', 'H', 'D', 'R'};
  for (std::uint32_t v : {width, height})
    for (int s = 24; s >= 0; s -= 8) chunk.push_back(static_cast<std::uint8_t>(v >> s));
  chunk.insert(chunk.end(), {8, 0, 0, 0, 0});  // 8-bit gray, deflate, no filter, no interlace
  std::uint32_t crc = 0xffffffffu;
  for (std::uint8_t b : chunk) {
    crc ^= b;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  crc ^= 0xffffffffu;
  out.insert(out.end(), chunk.begin(), chunk.end());
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(crc >> s));
  return out;
}

}  // namespace

TEST_SUITE("data") {

// fuzz_data_entry: "OriginalImage[Width,Height]" = 2500,201430000083 was kept as a height of
// -433462829 (the long long wrapped into an int). Follow-up # and ages wrapped the same way.
TEST_CASE("fuzz regression: Data_Entry numbers too large for an int are malformed rows, not wrapped") {
  Report report(Report::Echo::Off);
  const Metadata m = parse(std::string(kHeader) +
                               "00000013_028.png,Mass,6,13,056Y,M,AP,2500,201430000083,0.168,0.168\n"  // line 2
                               "00000013_029.png,Mass,4294967297,13,56,M,AP,2500,2048,0.168,0.168\n"  // line 3
                               "00000013_030.png,Mass,7,13,99999999999Y,M,AP,2500,2048,0.168,0.168\n"  // line 4
                               "00000013_031.png,Mass,8,13,56,M,AP,4294967296,2048,0.168,0.168\n"     // line 5
                               "00000013_032.png,Mass,9,13,56,M,AP,2147483647,2048,0.168,0.168\n",   // kept
                           report);
  REQUIRE(m.images.size() == 1);
  CHECK(m.images[0].name == "00000013_032.png");
  CHECK(m.images[0].original_width == 2147483647);
  CHECK(m.malformed_rows == 4);
  CHECK(report.contains("fuzz.csv:2: malformed row skipped: bad OriginalImage size '2500,201430000083'"));
  CHECK(report.contains("fuzz.csv:3: malformed row skipped: bad Follow-up # '4294967297'"));
  CHECK(report.contains("fuzz.csv:4: malformed row skipped: bad Patient Age '99999999999Y'"));
  CHECK(report.contains("fuzz.csv:5: malformed row skipped: bad OriginalImage size '4294967296,2048'"));
  CHECK(parse_age_years("2147483648") == -1);
  CHECK(parse_age_years("2147483647") == 2147483647);
  CHECK(parse_age_years("99999999999D") == 273972602);
}

// fuzz_bbox_list: "nan", "inf" and 1e39 parse as doubles, so boxes of NaN or infinite size
// (or 1e39 cast to float: inf) were attached.
TEST_CASE("fuzz regression: box coordinates nan, inf or beyond float's range are skipped") {
  Report report(Report::Echo::Off);
  Metadata m = parse(std::string(kHeader) + "00000001_000.png,Mass|Nodule,0,1,57,M,PA,2682,2749,0.143,0.143\n",
                     report);
  std::istringstream in(
      "Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
      "00000001_000.png,Nodule,nan,2,inf,1e39\n"  // line 2
      "00000001_000.png,Nodule,1,2,3,1e39\n"      // line 3
      "00000001_000.png,Nodule,-inf,2,3,4\n"      // line 4
      "00000001_000.png,Nodule,1,2,NaN,4\n"       // line 5
      "00000001_000.png,Mass,1e-3,2,3.4e38,4\n");  // kept: within float's range
  const int attached = read_bbox_list(in, "fuzz_bbox.csv", m, report);
  CHECK(attached == 1);
  CHECK(m.skipped_boxes == 4);
  REQUIRE(m.images[0].boxes.size() == 1);
  CHECK(m.images[0].boxes[0].w == doctest::Approx(3.4e38));
  for (int line = 2; line <= 5; ++line)
    CHECK(report.contains("fuzz_bbox.csv:" + std::to_string(line) + ": box skipped: bad box numbers"));
  CHECK(report.contains("'nan','2','inf','1e39': expected finite x, y and positive finite w, h"));
}

// fuzz_image_decode: a header claiming a huge image made stb allocate for it before reading
// any pixel (a few bytes of JPEG or PNG header: gigabytes). Refused from the header now.
TEST_CASE("fuzz regression: an image header claiming more than kMaxImagePixels is refused before decoding") {
  const auto huge = png_header_only(9000, 9000);
  CHECK_THROWS_WITH_AS(decode_gray8(huge.data(), huge.size(), "huge.png"),
                       doctest::Contains("huge.png: its header says 9000 x 9000 pixels"), Error);
  // At the limit the header passes and decoding fails for want of data, as for any truncated file.
  const auto big = png_header_only(8192, 8192);
  CHECK_THROWS_WITH_AS(decode_gray8(big.data(), big.size(), "big.png"), doctest::Contains("cannot decode image big.png"),
                       Error);
}

// fuzz_image_decode found two memory errors in stb_image 2.27's JPEG decoder (Debian 12), both
// fixed in stb 2.28: a DHT segment declaring more than 256 codes wrote past the Huffman
// tables (UBSan: index 257 out of bounds for 'stbi_uc[257]'), and a bad code in a progressive
// scan read before them (index -178 out of bounds for 'stbi_uc[256]'). stb's JPEG decoder is not
// compiled in; JPEG goes to libjpeg-turbo (data/jpeg_decode.h), which refuses the input cleanly.
// The first input's core:
TEST_CASE("fuzz regression: a JPEG whose Huffman table has 257 codes is refused by name") {
  std::vector<std::uint8_t> jpeg = {0xFF, 0xD8,                           // SOI
                                    0xFF, 0xE0, 0x00, 0x04, 'x', 'y',     // APP0
                                    0xFF, 0xC4, 0x00, 0x13, 0x00};        // DHT, 19 bytes, DC table 0
  for (int i = 0; i < 16; ++i) jpeg.push_back(i == 0 ? 0xFF : i == 1 ? 0x02 : 0x00);  // 255 + 2 = 257 codes
  CHECK_THROWS_WITH_AS(decode_gray8(jpeg.data(), jpeg.size(), "dht.jpg"),
                       doctest::Contains("cannot decode image dht.jpg: corrupt JPEG header"), Error);
  const std::vector<std::uint8_t> soi = {0xFF, 0xD8, 0xFF, 0xD9};
  CHECK_THROWS_WITH_AS(decode_gray8(soi.data(), soi.size(), "tiny.jpg"), doctest::Contains("tiny.jpg"), Error);
}

// fuzz_image_decode: a PNG whose first IDAT chunk is empty (legal) made stb_image 2.27 call
// memcpy(NULL, ..., 0) (UBSan: null pointer passed as argument 1). Such chunks are dropped
// before stb sees the file; the image decodes as without them.
TEST_CASE("fuzz regression: empty IDAT chunks in a PNG decode cleanly, to the same pixels") {
  std::vector<std::uint8_t> px(24 * 16);
  for (std::size_t i = 0; i < px.size(); ++i) px[i] = static_cast<std::uint8_t>(i * 7);
  const std::vector<std::uint8_t> png = encode_png8(px.data(), 24, 16, 1);
  const std::vector<std::uint8_t> empty_idat = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xAF, 0x06, 0x1E};
  std::vector<std::uint8_t> odd(png.begin(), png.begin() + 33);  // signature + IHDR
  odd.insert(odd.end(), empty_idat.begin(), empty_idat.end());
  odd.insert(odd.end(), png.begin() + 33, png.end() - 12);  // the IDAT(s)
  odd.insert(odd.end(), empty_idat.begin(), empty_idat.end());
  odd.insert(odd.end(), png.end() - 12, png.end());  // IEND
  const GrayImage img = decode_gray8(odd.data(), odd.size(), "empty_idat.png");
  CHECK(img.width == 24);
  CHECK(img.height == 16);
  CHECK(img.pixels == px);
  // Only empty IDATs: no image data at all, an error naming the file.
  std::vector<std::uint8_t> none(png.begin(), png.begin() + 33);
  none.insert(none.end(), empty_idat.begin(), empty_idat.end());
  none.insert(none.end(), png.end() - 12, png.end());
  CHECK_THROWS_WITH_AS(decode_gray8(none.data(), none.size(), "no_data.png"),
                       doctest::Contains("cannot decode image no_data.png"), Error);
}

// fuzz_image_decode (out-of-memory): a 16x16 PNG whose IDAT chunk declared about 2 GiB made
// stb_image realloc 2 GiB before noticing the data was not there. Refused from the chunk header.
TEST_CASE("fuzz regression: a PNG IDAT chunk longer than the file is an error, not a 2 GiB allocation") {
  std::vector<std::uint8_t> px(16 * 16, 9);
  std::vector<std::uint8_t> png = encode_png8(px.data(), 16, 16, 1);
  REQUIRE(std::string(png.begin() + 37, png.begin() + 41) == "IDAT");  // after the signature and IHDR
  png[33] = 0x7F, png[34] = 0xFF, png[35] = 0xFF, png[36] = 0xF0;
  CHECK_THROWS_WITH_AS(decode_gray8(png.data(), png.size(), "long_idat.png"),
                       doctest::Contains("long_idat.png: truncated or corrupt PNG: the IDAT chunk at byte 33 "
                                         "declares 2147483632 bytes of data"),
                       Error);
}

// The seeds of the image fuzzer are real radiographs in every PNG flavour the decoder takes;
// they must all decode.
TEST_CASE("fuzz seeds: every image of fuzz/corpus/image_decode decodes to the expected size") {
  const std::string dir = std::string(CXR_SOURCE_DIR) + "/fuzz/corpus/image_decode/";
  const struct {
    const char* file;
    int w, h;
  } seeds[] = {{"gray8_48.png", 48, 48},       {"rgba_crop64.png", 64, 64},
               {"rgb_crop32.png", 32, 32},     {"gray_alpha16.png", 16, 16},
               {"palette16.png", 16, 16},      {"gray16_24.png", 24, 24}};
  for (const auto& s : seeds) {
    CAPTURE(s.file);
    const GrayImage img = decode_gray8_file(dir + s.file);
    CHECK(img.width == s.w);
    CHECK(img.height == s.h);
  }
}

}  // TEST_SUITE
