// Test fixture: make ROIs the way users do in ImageJ (threshold + Analyze Particles, plus hand-drawn
// polygon, oval and rectangle selections), save them as an ROI set, and let ImageJ paint ROI i with
// value i+1 into a 16-bit image. Argument: "IMAGE|OUTPUT_FOLDER".
args = getArgument();
input = substring(args, 0, indexOf(args, "|"));
outdir = substring(args, indexOf(args, "|") + 1);
setBatchMode(true);
open(input);
setAutoThreshold("Huang dark");
run("Analyze Particles...", "size=20-Infinity include add");
makePolygon(10.3, 12.7, 40.2, 15.1, 35.6, 44.9, 12.2, 38.4);
roiManager("add");
makeOval(60, 150, 23, 17);
roiManager("add");
makeRectangle(120, 160, 15, 9);
roiManager("add");
makeOval(150.5, 100.25, 20.5, 30.75);
roiManager("add");
n = roiManager("count");
roiManager("save", outdir + "/rois.zip");
newImage("labels", "16-bit black", getWidth(), getHeight(), 1);
for (i = 0; i < n; i++) {
	roiManager("select", i);
	setColor(i + 1);
	fill();
}
run("Select None");
saveAs("Tiff", outdir + "/painted.tif");
print("rois=" + n);
