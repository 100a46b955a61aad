#include "tests/data/dicom_writer.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <unistd.h>

#include "data/image_io.h"

#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#endif
#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcpixel.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrleerg.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmjpeg/djencode.h>
#include <dcmtk/dcmjpeg/djrplol.h>
#include <dcmtk/dcmjpeg/djrploss.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace cxr::test {
namespace {

void check(const OFCondition& c, const char* what) {
  if (c.bad()) throw std::runtime_error(std::string("dicom_writer: ") + what + ": " + c.text());
}

void put(DcmItem& item, const DcmTagKey& key, const std::string& value) {
  check(item.putAndInsertString(DcmTag(key), value.c_str()), "putAndInsertString");
}

}  // namespace

std::vector<std::uint8_t> encode_dicom(const DicomSpec& s) {
  static std::once_flag once;
  std::call_once(once, [] {
    DJEncoderRegistration::registerCodecs();
    DcmRLEEncoderRegistration::registerCodecs();
  });
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  put(ds, DCM_SOPClassUID, UID_DigitalXRayImageStorageForPresentation);
  put(ds, DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1143.1");
  put(ds, DCM_Modality, "DX");
  check(ds.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(s.height)), "Rows");
  check(ds.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(s.width)), "Columns");
  check(ds.putAndInsertUint16(DCM_SamplesPerPixel, static_cast<Uint16>(s.samples)), "SamplesPerPixel");
  if (s.samples > 1) check(ds.putAndInsertUint16(DCM_PlanarConfiguration, 0), "PlanarConfiguration");
  put(ds, DCM_PhotometricInterpretation, s.photometric);
  check(ds.putAndInsertUint16(DCM_BitsAllocated, static_cast<Uint16>(s.bits_allocated)), "BitsAllocated");
  check(ds.putAndInsertUint16(DCM_BitsStored, static_cast<Uint16>(s.bits_stored)), "BitsStored");
  check(ds.putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(s.bits_stored - 1)), "HighBit");
  check(ds.putAndInsertUint16(DCM_PixelRepresentation, s.is_signed ? 1 : 0), "PixelRepresentation");
  if (s.frames > 1) put(ds, DCM_NumberOfFrames, std::to_string(s.frames));
  if (s.rescale) {
    put(ds, DCM_RescaleSlope, std::to_string(s.rescale->first));
    put(ds, DCM_RescaleIntercept, std::to_string(s.rescale->second));
  }
  if (!s.windows.empty()) {
    std::string centers, widths;
    for (const auto& [c, w] : s.windows) {
      centers += (centers.empty() ? "" : "\\") + std::to_string(c);
      widths += (widths.empty() ? "" : "\\") + std::to_string(w);
    }
    put(ds, DCM_WindowCenter, centers);
    put(ds, DCM_WindowWidth, widths);
  }
  if (s.voi_lut) {
    DcmItem* item = nullptr;
    check(ds.findOrCreateSequenceItem(DCM_VOILUTSequence, item, -2), "VOILUTSequence");
    const Uint16 descriptor[3] = {static_cast<Uint16>(s.voi_lut->entries), static_cast<Uint16>(s.voi_lut->first_mapped),
                                  static_cast<Uint16>(s.voi_lut->bits)};
    check(item->putAndInsertUint16Array(DCM_LUTDescriptor, descriptor, 3), "LUTDescriptor");
    check(item->putAndInsertUint16Array(DCM_LUTData, s.voi_lut->data.data(),
                                        static_cast<unsigned long>(s.voi_lut->data.size())),
          "LUTData");
  }
  if (!s.pixel_spacing.empty()) put(ds, DCM_PixelSpacing, s.pixel_spacing);
  if (!s.imager_pixel_spacing.empty()) put(ds, DCM_ImagerPixelSpacing, s.imager_pixel_spacing);
  for (const auto& [keyword, value] : s.attributes) {
    DcmTag found;
    check(DcmTag::findTagFromName(keyword.c_str(), found), ("unknown keyword " + keyword).c_str());
    check(ds.putAndInsertString(found, value.c_str()), keyword.c_str());
  }

  E_TransferSyntax xfer = EXS_LittleEndianExplicit;
  if (s.encoding == DicomSpec::Encoding::jpeg2000_fake) {
    auto* sequence = new DcmPixelSequence(DCM_PixelSequenceTag);
    sequence->insert(new DcmPixelItem(DCM_PixelItemTag));  // the empty basic offset table
    auto* fragment = new DcmPixelItem(DCM_PixelItemTag);
    const Uint8 junk[8] = {0xFF, 0x4F, 0xFF, 0x51, 0, 0, 0, 0};  // a J2K SOC + SIZ start, nothing more
    check(fragment->putUint8Array(junk, 8), "fragment");
    sequence->insert(fragment);
    auto* pixels = new DcmPixelData(DCM_PixelData);
    pixels->putOriginalRepresentation(EXS_JPEG2000, nullptr, sequence);
    check(ds.insert(pixels, true), "PixelData");
    xfer = EXS_JPEG2000;
  } else if (s.pixel_data) {
    const std::size_t n = s.values.size() * static_cast<std::size_t>(s.frames);
    if (s.bits_allocated == 8) {
      std::vector<Uint8> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<Uint8>(s.values[i % s.values.size()]);
      check(ds.putAndInsertUint8Array(DCM_PixelData, v.data(), static_cast<unsigned long>(n)), "PixelData");
    } else {
      std::vector<Uint16> v(n);
      for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<Uint16>(s.values[i % s.values.size()]);
      check(ds.putAndInsertUint16Array(DCM_PixelData, v.data(), static_cast<unsigned long>(n)), "PixelData");
    }
  }
  if (s.encoding == DicomSpec::Encoding::implicit_le) xfer = EXS_LittleEndianImplicit;
  if (s.encoding == DicomSpec::Encoding::rle) xfer = EXS_RLELossless;
  if (s.encoding == DicomSpec::Encoding::jpeg_lossless) xfer = EXS_JPEGProcess14SV1;
  if (s.encoding == DicomSpec::Encoding::jpeg_baseline) xfer = EXS_JPEGProcess1;
  if (s.encoding == DicomSpec::Encoding::rle || s.encoding == DicomSpec::Encoding::jpeg_lossless ||
      s.encoding == DicomSpec::Encoding::jpeg_baseline) {
    DJ_RPLossless lossless;
    DJ_RPLossy lossy(90);
    const DcmRepresentationParameter* parameters = nullptr;
    if (s.encoding == DicomSpec::Encoding::jpeg_lossless) parameters = &lossless;
    if (s.encoding == DicomSpec::Encoding::jpeg_baseline) parameters = &lossy;
    check(ds.chooseRepresentation(xfer, parameters), "chooseRepresentation (compressing)");
    if (!ds.canWriteXfer(xfer)) throw std::runtime_error("dicom_writer: DCMTK cannot compress to that syntax");
  }

  static std::atomic<int> counter{0};
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("cxr_dicom_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + ".dcm"))
                               .string();
  const OFCondition saved = s.preamble ? file.saveFile(path.c_str(), xfer) : ds.saveFile(path.c_str(), xfer);
  check(saved, "saveFile");
  std::vector<std::uint8_t> bytes = data::read_file_bytes(path);
  std::filesystem::remove(path);
  return bytes;
}

void write_dicom(const std::string& path, const DicomSpec& spec) {
  const auto bytes = encode_dicom(spec);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out.good()) throw std::runtime_error("dicom_writer: cannot write " + path);
}

}  // namespace cxr::test
