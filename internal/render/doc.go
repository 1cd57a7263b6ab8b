// Package render is the pixel pipeline of PS3.3/PS3.4: Modality LUT
// (rescale, LUT sequence, enhanced functional groups per frame), VOI
// (window LINEAR / LINEAR_EXACT / SIGMOID, VOI LUT sequence, min–max),
// MONOCHROME1 and Presentation LUT Shape INVERSE, colour models (RGB,
// YBR_FULL, YBR_FULL_422, YBR_ICT, YBR_RCT, YBR_PARTIAL, PALETTE COLOR),
// viewport crop/scale (disintegration/imaging), burned-in patient and
// technique text (annotate.go) and JPEG/PNG encoding.
//
// Output is 8-bit and truncated like dcmtk's dcmj2pnm; render_test.go
// compares every decodable corpus image with dcmj2pnm.
package render
