"""Writes the MAST responses the acquisition tests replay (run once; the JSON files are committed).

Format: MAST's Portal API ("Mashup") JSON exactly as astroquery receives it from
``/api/v0/invoke`` -- ``{"status", "msg", "paging", "fields": [{"name", "type"}], "data": [...]}``
-- as in astroquery's own test data (``astroquery/mast/tests/data/caom.json``, ``products.json``);
``columnsconfig_caom.json`` is astroquery's recorded ``Mast.Caom.Cone`` columns config (BSD-3);
``whoami_*.json`` are ``/whoami`` answers for a valid and a refused token (the fields astroquery's
``session_info`` test uses). File names, sizes and keywords describe small stand-in programs.
"""

import json
import zlib
from pathlib import Path

HERE = Path(__file__).parent
FILE_SIZE = 8640  # the stand-in uncal files the fake MAST serves: 3 FITS blocks

OBS_FIELDS = [("dataproduct_type", "string"), ("calib_level", "int"), ("obs_collection", "string"),
              ("obs_id", "string"), ("target_name", "string"), ("s_ra", "float"), ("s_dec", "float"),
              ("t_min", "float"), ("t_max", "float"), ("t_exptime", "float"), ("wavelength_region", "string"),
              ("filters", "string"), ("em_min", "float"), ("em_max", "float"), ("target_classification", "string"),
              ("obs_title", "string"), ("t_obs_release", "float"), ("instrument_name", "string"),
              ("proposal_pi", "string"), ("proposal_id", "string"), ("proposal_type", "string"),
              ("project", "string"), ("sequence_number", "int"), ("provenance_name", "string"),
              ("s_region", "string"), ("jpegURL", "string"), ("dataURL", "string"), ("dataRights", "string"),
              ("mtFlag", "boolean"), ("srcDen", "float"), ("intentType", "string"), ("obsid", "string"),
              ("objID", "string"), ("_selected_", "boolean")]
PRODUCT_FIELDS = [("obsID", "string"), ("obs_collection", "string"), ("dataproduct_type", "string"),
                  ("obs_id", "string"), ("description", "string"), ("type", "string"), ("dataURI", "string"),
                  ("productType", "string"), ("productGroupDescription", "string"),
                  ("productSubGroupDescription", "string"), ("productDocumentationURL", "string"),
                  ("project", "string"), ("prvversion", "string"), ("proposal_id", "string"),
                  ("productFilename", "string"), ("size", "int"), ("parent_obsid", "string"),
                  ("dataRights", "string"), ("calib_level", "int"), ("filters", "string"), ("_selected_", "boolean")]
JWST_FIELDS = [("ArchiveFileID", "int"), ("filename", "string"), ("fileSetName", "string"), ("productLevel", "string"),
               ("program", "string"), ("observtn", "string"), ("visit", "string"), ("exposure", "string"),
               ("detector", "string"), ("exp_type", "string"), ("filter", "string"), ("subarray", "string"),
               ("readpatt", "string"), ("ngroups", "int"), ("nints", "int"), ("duration", "float"),
               ("targprop", "string"), ("template", "string"), ("dataURI", "string"), ("fileSize", "int")]


def mashup(fields, rows):
    data = [{name: row.get(name) for name, _ in fields} for row in rows]
    return {"status": "COMPLETE", "msg": "", "fields": [{"name": n, "type": t} for n, t in fields], "data": data,
            "paging": {"page": 1, "pageSize": len(data), "pagesFiltered": 1, "rows": len(data),
                       "rowsFiltered": len(data), "rowsTotal": len(data)}}


def obs(program, obsid, obs_id, instrument, filters, rights="PUBLIC", calib=3, product="image"):
    return {"dataproduct_type": product, "calib_level": calib, "obs_collection": "JWST", "obs_id": obs_id,
            "target_name": "NGC-1068", "s_ra": 40.6696, "s_dec": -0.0133, "t_min": 60210.1, "t_max": 60210.2,
            "t_exptime": 555.0, "wavelength_region": "INFRARED", "filters": filters, "em_min": 6600.0,
            "em_max": 8700.0, "target_classification": "Galaxy", "obs_title": "MIRI imaging test",
            "t_obs_release": 60575.2, "instrument_name": instrument, "proposal_pi": "Doe, J.",
            "proposal_id": program, "proposal_type": "GO", "project": "JWST", "sequence_number": None,
            "provenance_name": "CALJWST", "s_region": "POLYGON 40.66 -0.02 40.68 -0.02 40.68 0.0 40.66 0.0",
            "jpegURL": None, "dataURL": None, "dataRights": rights, "mtFlag": False, "srcDen": 5885.0,
            "intentType": "science", "obsid": obsid, "objID": str(int(obsid) + 1000), "_selected_": None}


def product(obsid, obs_id, filename, calib, subgroup, ptype="SCIENCE", rights="PUBLIC", filters="F770W", size=None):
    return {"obsID": obsid, "obs_collection": "JWST", "dataproduct_type": "image", "obs_id": obs_id,
            "description": f"exposure/target (L{calib}) : {subgroup.lower()}", "type": "S",
            "dataURI": f"mast:JWST/product/{filename}", "productType": ptype,
            "productGroupDescription": "Minimum Recommended Products" if calib >= 2 else None,
            "productSubGroupDescription": subgroup, "productDocumentationURL": None, "project": "CALJWST",
            "prvversion": "1.14.0", "proposal_id": filename[2:7], "productFilename": filename,
            "size": size or (FILE_SIZE if filename.endswith("_uncal.fits") else 123456),
            "parent_obsid": obsid, "dataRights": rights, "calib_level": calib, "filters": filters,
            "_selected_": None}


def keywords(filename, level, exp_type, filt, subarray="FULL", readpatt="FASTR1", ngroups=10, duration=27.75,
             detector="MIRIMAGE", template="MIRI Imaging"):
    program, observtn, visit, exposure = filename[3:7], filename[7:10], filename[10:13], filename[20:25]
    return {"ArchiveFileID": zlib.crc32(filename.encode()) % 10**8, "filename": filename,
            "fileSetName": filename.rsplit("_", 1)[0], "productLevel": level, "program": program,
            "observtn": observtn.lstrip("0"), "visit": visit.lstrip("0"), "exposure": exposure.lstrip("0"),
            "detector": detector, "exp_type": exp_type, "filter": filt, "subarray": subarray,
            "readpatt": readpatt, "ngroups": ngroups, "nints": 1, "duration": duration, "targprop": "NGC-1068",
            "template": template, "dataURI": f"mast:JWST/product/{filename}", "fileSize": 123456}


def write(name, obj):
    (HERE / name).write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


def main():
    # Program 03224: MIRI imaging (obs 1: F770W x2, F1800W x1), MIRI TA (obs 2), MIRI LRS (obs 3),
    # NIRCam imaging (obs 4), public.
    img = ["jw03224001001_02101_00001_mirimage", "jw03224001001_02101_00002_mirimage",
           "jw03224001001_02103_00001_mirimage"]
    ta, lrs = "jw03224002001_02101_00001_mirimage", "jw03224003001_03102_00001_mirimage"
    write("caom_03224.json", mashup(OBS_FIELDS, [
        obs("03224", "87600001", "jw03224-o001_t001_miri_f770w", "MIRI/IMAGE", "F770W"),
        obs("03224", "87600002", "jw03224-o001_t001_miri_f1800w", "MIRI/IMAGE", "F1800W"),
        obs("03224", "87600003", ta, "MIRI/TARGACQ", "FND", calib=2),
        obs("03224", "87600004", "jw03224-o003_t001_miri_p750l", "MIRI/SLIT", "P750L", product="spectrum"),
        obs("03224", "87600005", "jw03224-o004_t001_nircam_clear-f200w", "NIRCAM/IMAGE", "CLEAR;F200W")]))
    rows = []
    for i, (stem, oid, f) in enumerate([(img[0], "87600001", "F770W"), (img[1], "87600001", "F770W"),
                                        (img[2], "87600002", "F1800W")]):
        lvl3 = "jw03224-o001_t001_miri_" + f.lower()
        rows += [product(oid, lvl3, f"{stem}_uncal.fits", 1, "UNCAL", filters=f),
                 product(oid, lvl3, f"{stem}_rate.fits", 2, "RATE", filters=f),
                 product(oid, lvl3, f"{stem}_cal.fits", 2, "CAL", filters=f),
                 product(oid, lvl3, f"{stem}_uncal.fits", 1, "UNCAL", filters=f)]  # MAST lists members twice
        rows.append(product(oid, lvl3, f"jw03224001001_gs-fg_2023267{i}_cal.fits", 1, "GS-FG",
                            ptype="AUXILIARY", filters=f))
    rows += [product("87600001", "jw03224-o001_t001_miri_f770w", "jw03224-o001_t001_miri_f770w_i2d.fits", 3, "I2D")]
    rows += [product("87600003", ta, f"{ta}_uncal.fits", 1, "UNCAL", filters="FND"),
             product("87600003", ta, f"{ta}_cal.fits", 2, "CAL", filters="FND"),
             product("87600004", "jw03224-o003_t001_miri_p750l", f"{lrs}_uncal.fits", 1, "UNCAL", filters="P750L"),
             product("87600004", "jw03224-o003_t001_miri_p750l", f"{lrs}_x1d.fits", 2, "X1D", filters="P750L")]
    write("products_03224.json", mashup(PRODUCT_FIELDS, rows))
    write("jwst_miri_03224.json", mashup(JWST_FIELDS, [
        keywords(f"{img[0]}_cal.fits", "2b", "MIR_IMAGE", "F770W"),
        keywords(f"{img[1]}_cal.fits", "2b", "MIR_IMAGE", "F770W"),
        keywords(f"{img[2]}_cal.fits", "2b", "MIR_IMAGE", "F1800W", ngroups=40, duration=111.0),
        keywords(f"{ta}_cal.fits", "2b", "MIR_TACQ", "FND", subarray="SLITLESSPRISM", ngroups=5, duration=1.4,
                 template="MIRI Low Resolution Spectroscopy"),
        keywords(f"{lrs}_x1d.fits", "2b", "MIR_LRS-FIXEDSLIT", "P750L", ngroups=50, duration=140.0,
                 template="MIRI Low Resolution Spectroscopy")]))

    # Program 04999: MIRI imaging, exclusive access.
    p = ["jw04999001001_02101_00001_mirimage", "jw04999001001_02101_00002_mirimage"]
    write("caom_04999.json", mashup(OBS_FIELDS, [
        obs("04999", "88800001", "jw04999-o001_t001_miri_f2100w", "MIRI/IMAGE", "F2100W", rights="EXCLUSIVE_ACCESS")]))
    write("products_04999.json", mashup(PRODUCT_FIELDS, [
        product("88800001", "jw04999-o001_t001_miri_f2100w", f"{s}_uncal.fits", 1, "UNCAL",
                rights="EXCLUSIVE_ACCESS", filters="F2100W") for s in p]))
    write("jwst_miri_04999.json", mashup(JWST_FIELDS, [
        keywords(f"{s}_rate.fits", "2a", "MIR_IMAGE", "F2100W", subarray="SUB256", ngroups=8, duration=8.3)
        for s in p]))

    # Program 01111: NIRCam only.
    write("caom_01111.json", mashup(OBS_FIELDS, [
        obs("01111", "89900001", "jw01111-o001_t001_nircam_clear-f150w", "NIRCAM/IMAGE", "CLEAR;F150W")]))
    # Any other program: MAST answers COMPLETE with no rows.
    write("caom_empty.json", mashup(OBS_FIELDS, []))

    whoami = {"ezid": "jdoe", "eppn": "jdoe@stsci.edu", "anon": False, "scopes": ["mast:user:info",
              "mast:exclusive_access"], "session": None, "token": "****",
              "attrib": {"uuid": "0a1b2c3d-0000-4000-8000-000000000001", "first_name": "J.", "last_name": "Doe",
                         "display_name": "J. Doe", "internal": "0", "email": "jdoe@example.org",
                         "Jwstcalengdataaccess": "false"}}
    write("whoami_user.json", whoami)
    write("whoami_anon.json", {"ezid": "anonymous", "eppn": None, "anon": True, "scopes": [], "session": None,
                               "token": None, "attrib": {}})
    write("columnsconfig_jwst_miri.json", {name: {"vot.datatype": {"string": "char", "int": "int",
                                                                    "float": "double"}[t], "vot.name": name,
                                                   "text": name} for name, t in JWST_FIELDS})


if __name__ == "__main__":
    main()
