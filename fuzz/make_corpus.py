#!/usr/bin/python3
"""Rebuilds the seed corpora under fuzz/corpus/ from the real NIH files in ../shared/data/nih.

Run with Debian's python3 (PIL): /usr/bin/python3 fuzz/make_corpus.py. The safetensors seeds
are written by the project's own writer instead: `build-fuzz/fuzz_seed_safetensors fuzz/corpus/safetensors`
and the DICOM seeds by `build-fuzz/seed_dicom fuzz/corpus/dicom_decode` (DCMTK)
(scripts/fuzz --seeds does all three). Everything is small excerpts: the whole corpus stays well under 1 MB.
"""
import io
import os
import sys

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NIH = os.path.join(ROOT, "..", "shared", "data", "nih")
OUT = os.path.join(ROOT, "fuzz", "corpus")


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def lines(path):
    with open(path, newline="") as f:
        return f.read().split("\n")


def data_entry():
    rows = lines(os.path.join(NIH, "Data_Entry_2017_v2020.csv"))
    header, body = rows[0], [r for r in rows[1:] if r]
    # A few dozen real rows: the first ones, and rows with multi-label cells and every finding.
    picked = body[:12]
    for r in body:
        if len(picked) >= 36:
            break
        if r.count("|") >= 2 and r not in picked:
            picked.append(r)
    write("data_entry", "v2020_real.csv", "\n".join([header] + picked) + "\n")
    # The original 2017 format: trailing comma on every line, ages like "058Y", CRLF endings.
    old_header = header + ","
    old = []
    for r in picked[:16]:
        f = r.split(",")
        f[4] = "%03dY" % int(f[4])
        old.append(",".join(f) + ",")
    write("data_entry", "original2017_crlf.csv", "\r\n".join([old_header] + old) + "\r\n")
    # Odd but legal rows: a BOM, quoted cells with commas and "" quotes, months/days ages,
    # spaces, blank lines, columns in another order, an unknown label, a duplicate.
    odd = (
        "\ufeffImage Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
        "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]\n"
        '"00000001_000.png","Cardiomegaly|Emphysema",0,1,57,M,PA,2682,2749,0.143,0.143\n'
        '00000002_000.png,"No Finding",1,2,006M,F,AP,2500,2048,0.171,0.171\n'
        "\n"
        '  00000003_000.png , Hernia | Pleural_Thickening ,0, 3 ,010D,F,AP,2048,2500,0.168,0.168\n'
        '00000004_000.png,"Mass|""Nodule""",0,4,82,M,AP,2500,2048,0.168,0.168\n'
        "00000005_000.png,Infiltrate|Unknown_Thing,0,5,70,F,PA,2048,2500,0.168,0.168\n"
        "00000005_000.png,Effusion,1,5,70,F,PA,2048,2500,0.168,0.168\n"
        "00000006_000.png,Edema,0,x6,70,F,PA,2048,2500,0.168,0.168\n"
        "00000007_000.png,Fibrosis,0,7,414,M,PA,0,2500,0.168,0.168\n"
        "00000008_000.png,Pneumonia,0,8,-3,M,PA,2500,2048\n"
        "00000009_000.png,Pneumothorax|Consolidation,0,9,99999999999Y,M,PA,2500,2048,1,1,extra\n"
    )
    write("data_entry", "odd_rows.csv", odd)
    minimal = "Patient ID,Image Index,Finding Labels\n1,a.png,Atelectasis\n2,b.png,No Finding\n"
    write("data_entry", "reordered_minimal.csv", minimal)
    return [r.split(",")[0] for r in picked]


def bbox_list():
    rows = [r for r in lines(os.path.join(NIH, "BBox_List_2017.csv")) if r]
    header, body = rows[0], rows[1:]
    per_class = {}
    for r in body:
        per_class.setdefault(r.split(",")[1], []).append(r)
    picked = [r for cls in sorted(per_class) for r in per_class[cls][:4]]
    write("bbox_list", "real_excerpt.csv", "\n".join([header] + picked) + "\n")
    odd = (
        header + "\r\n"
        + picked[0] + "\r\n"
        + picked[0] + "\r\n"  # a second box of the same class: skipped
        + '"%s",Mass,"1.5","2.5","30","40"\r\n' % picked[1].split(",")[0]
        + "99999999_999.png,Mass,1,2,3,4\r\n"  # not in the table
        + "%s,Hernia-ish,1,2,3,4\r\n" % picked[2].split(",")[0]
        + "%s,Nodule,1,2,0,4\r\n" % picked[3].split(",")[0]
        + "%s,Nodule,nan,2,inf,1e39\r\n" % picked[4].split(",")[0]
        + "%s,Nodule,1,2,3\r\n" % picked[5].split(",")[0]
        + "%s,Nodule,1,2,3,4,,,\r\n" % picked[6].split(",")[0]
    )
    write("bbox_list", "odd_rows.csv", odd)
    return sorted({r.split(",")[0] for r in picked})


def split_lists(names):
    # No official lists ship in ../shared; they are one name per line, like these.
    write("split_list", "train_val_list.txt", "\n".join(names[:20]) + "\n")
    write("split_list", "test_list_crlf.txt", "\r\n".join(names[20:30]) + "\r\n")
    write("split_list", "odd.txt", "\ufeff" + names[0] + "\n\n   \n  " + names[1] + "  \n" + names[1] + "\n\t" + names[2])


def images():
    a = Image.open(os.path.join(NIH, "images", "00000001_000.png"))
    b = Image.open(os.path.join(NIH, "images", "00009285_000.png"))

    def png(im, **kw):
        buf = io.BytesIO()
        im.save(buf, format="PNG", **kw)
        return buf.getvalue()

    small = a.resize((48, 48), Image.BILINEAR)
    write("image_decode", "gray8_48.png", png(small, optimize=True))
    crop = b.crop((400, 300, 464, 364))
    write("image_decode", "rgba_crop64.png", png(crop.convert("RGBA")))
    write("image_decode", "rgb_crop32.png", png(crop.resize((32, 32)).convert("RGB")))
    write("image_decode", "gray_alpha16.png", png(crop.resize((16, 16)).convert("LA")))
    write("image_decode", "palette16.png", png(crop.resize((16, 16)).convert("P")))
    g16 = Image.frombytes("I;16", (24, 24), bytes(v for p in crop.resize((24, 24)).getdata() for v in (p, p)))
    write("image_decode", "gray16_24.png", png(g16))


def jpegs():
    """JPEG seeds (fuzz_jpeg_decode; one in image_decode too): Pillow's libjpeg encoder."""
    b = Image.open(os.path.join(NIH, "images", "00009285_000.png")).convert("L")
    crop = b.crop((400, 300, 464, 364))

    def jpeg(im, **kw):
        buf = io.BytesIO()
        im.save(buf, format="JPEG", **kw)
        return buf.getvalue()

    # A colour version of the crop (R, G, B differ) for the YCbCr paths.
    rgb = Image.merge("RGB", (crop, crop.transpose(Image.FLIP_LEFT_RIGHT), crop.transpose(Image.FLIP_TOP_BOTTOM)))
    write("jpeg_decode", "gray_crop48_q90.jpg", jpeg(crop.resize((48, 48)), quality=90))
    write("jpeg_decode", "gray_crop32_progressive.jpg", jpeg(crop.resize((32, 32)), quality=95, progressive=True))
    write("jpeg_decode", "rgb444_crop24.jpg", jpeg(rgb.resize((24, 24)), quality=95, subsampling=0))
    write("jpeg_decode", "rgb420_crop32_optimized.jpg", jpeg(rgb.resize((32, 32)), quality=80, subsampling=2,
                                                             optimize=True))
    write("jpeg_decode", "rgb422_progressive_17x13.jpg", jpeg(rgb.resize((17, 13)), quality=75, subsampling=1,
                                                              progressive=True))
    write("image_decode", "gray_crop24.jpg", jpeg(crop.resize((24, 24)), quality=90))


def main():
    if not os.path.isdir(NIH):
        sys.exit("make_corpus: %s is missing" % NIH)
    names = data_entry()
    box_names = bbox_list()
    split_lists(names)
    images()
    jpegs()
    print("names used by the box list excerpt (fuzz_bbox_list.cpp's table):")
    print(" ".join(box_names))


main()
