// Test fixture: open an ROI set in the ROI Manager and print how many ROIs it holds.
// Argument: the path of the .zip.
path = getArgument();
setBatchMode(true);
roiManager("reset");
roiManager("open", path);
print("rois=" + roiManager("count"));
