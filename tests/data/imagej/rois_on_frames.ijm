// Test fixture: open a label time-lapse and its ROI set as a Fiji user does (File > Open, ROI Manager > Open), select
// each ROI in the ROI Manager and print where ImageJ puts it: the frame it shows and the label values under the ROI.
// Argument: "labels=[path.tif] rois=[path.zip]". Prints one line per ROI: roi=<i> name=<name> frame=<n> mode=<v> max=<v> n=<pixels>
args = getArgument();
labels = substring(args, indexOf(args, "labels=[") + 8, indexOf(args, "]"));
rest = substring(args, indexOf(args, "rois=[") + 6);
rois = substring(rest, 0, indexOf(rest, "]"));
setBatchMode(true);
open(labels);
Stack.getDimensions(width, height, channels, slices, frames);
print("dimensions=" + width + "x" + height + " channels=" + channels + " slices=" + slices + " frames=" + frames);
roiManager("reset");
roiManager("open", rois);
n = roiManager("count");
print("rois=" + n);
for (i = 0; i < n; i++) {
    roiManager("select", i);
    Stack.getPosition(channel, slice, frame);
    List.setMeasurements;
    print("roi=" + i + " name=" + Roi.getName + " frame=" + frame + " mode=" + List.getValue("Mode") + " max=" + List.getValue("Max") + " n=" + List.getValue("Area"));
}
run("Quit");
