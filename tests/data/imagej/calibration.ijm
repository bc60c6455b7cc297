// For tests/interop/test_imagej_calibration.py: with "mode=write dir=[DIR]" writes a calibrated 2D image and a
// calibrated 4D hyperstack (3 slices x 4 frames) as ImageJ saves them; with "mode=read path=[FILE]" prints the
// dimensions and calibration ImageJ reads from a file (written by fijiport).
args = getArgument();
mode = value(args, "mode");
if (mode == "write") {
    dir = value(args, "dir");
    newImage("cal2d", "16-bit ramp", 48, 40, 1);
    run("Properties...", "channels=1 slices=1 frames=1 unit=micron pixel_width=0.1625 pixel_height=0.1625 voxel_depth=1");
    saveAs("Tiff", dir + "/cal2d.tif");
    close();
    newImage("hyperstack", "16-bit ramp", 48, 40, 1, 3, 4);
    run("Properties...", "channels=1 slices=3 frames=4 unit=micron pixel_width=0.1625 pixel_height=0.1625 voxel_depth=1.5 frame=[2 sec]");
    saveAs("Tiff", dir + "/hyperstack.tif");
    close();
} else {
    open(value(args, "path"));
    getVoxelSize(w, h, d, unit);
    Stack.getDimensions(width, height, channels, slices, frames);
    print("dims=" + width + "," + height + "," + channels + "," + slices + "," + frames);
    print("voxel=" + d2s(w, 6) + "," + d2s(h, 6) + "," + d2s(d, 6) + "," + unit);
    print("interval=" + Stack.getFrameInterval());
    print("bitdepth=" + bitDepth());
    close();
}

function value(args, key) {
    // key=value or key=[value with spaces]
    i = indexOf(args, key + "=");
    if (i < 0) exit("missing " + key + "=");
    rest = substring(args, i + lengthOf(key) + 1);
    if (startsWith(rest, "[")) return substring(rest, 1, indexOf(rest, "]"));
    j = indexOf(rest, " ");
    if (j < 0) return rest;
    return substring(rest, 0, j);
}
