// stardist_segment_folder.ijm - StarDist segmentation of every 2D image of a folder with StarDist-Fiji, with
//   the model's own thresholds; saves the label image under the input name and the ROI set as <base name>.zip.
//
// Plugins needed: Fiji with the CSBDeep and StarDist update sites (Help > Update... > Manage update sites),
//   StarDist-Fiji 0.3 on CSBDeep-Fiji 0.6 / TensorFlow Java 1.15.0. The model is the single-output SavedModel zip
//   written by `fijiport export STARDIST_MODEL -o model.zip --fiji-zip stardist_fiji.zip`, checked on TensorFlow
//   1.13.1, 1.15.0 and 2.10.1 by `fijiport validate --runtimes`. StarDist-Fiji does not read a custom model's
//   thresholds: this macro passes them. The plugin cannot run in fijiport's tests: they check the option string
//   this macro builds against the keys StarDist-Fiji parses, and its "not installed" exit in plain ImageJ 1.53t.
// GPU: StarDist-Fiji runs TensorFlow through CSBDeep: Edit > Options > TensorFlow..., choose a GPU build and
//   restart Fiji; it needs CUDA 10.0 and cuDNN >= 7.4 (Linux/Windows). The non-maximum suppression runs on the CPU.
// From the menu: Plugins > fijiport > stardist segment folder (after `fijiport macros install --fiji Fiji.app`);
//   a dialog asks for the parameters. `fijiport export --fiji-zip` writes a copy with this model's values filled in.
// Batch / headless (ImageJ's option syntax, key=[a value with spaces]):
//   ImageJ-linux64 --headless --console -macro stardist_segment_folder.ijm "input=[DIR] output=[DIR] model=[stardist_fiji.zip]"
//   optional: prob_thresh=0.5 nms_thresh=0.4 p_low=1 p_high=99.8 ntiles=1 dry_run=false
//   dry_run=true prints each plugin call instead of running it.
// Cite: Schmidt et al., Cell Detection with Star-Convex Polygons, MICCAI 2018,
//   https://doi.org/10.1007/978-3-030-00934-2_30

// defaults; `fijiport export` fills in the model's own values on the lines marked fijiport:KEY
var model = "";  // fijiport:model
var probThresh = "0.5";  // fijiport:prob_thresh
var nmsThresh = "0.4";  // fijiport:nms_thresh
var pLow = "1";  // fijiport:p_low
var pHigh = "99.8";  // fijiport:p_high
var nTiles = "1";  // fijiport:ntiles
var input = "";
var output = "";
var dryRun = false;

usage = "usage: input=[FOLDER] output=[FOLDER] model=[MODEL.zip] (optional: prob_thresh=" + probThresh + " nms_thresh="
	+ nmsThresh + " p_low=" + pLow + " p_high=" + pHigh + " ntiles=" + nTiles + " dry_run=false)";
args = getArgument();
if (args != "") {
	input = call("ij.Macro.getValue", args, "input", "");
	output = call("ij.Macro.getValue", args, "output", "");
	model = call("ij.Macro.getValue", args, "model", model);
	probThresh = call("ij.Macro.getValue", args, "prob_thresh", probThresh);
	nmsThresh = call("ij.Macro.getValue", args, "nms_thresh", nmsThresh);
	pLow = call("ij.Macro.getValue", args, "p_low", pLow);
	pHigh = call("ij.Macro.getValue", args, "p_high", pHigh);
	nTiles = call("ij.Macro.getValue", args, "ntiles", nTiles);
	if (call("ij.Macro.getValue", args, "dry_run", "false") == "true") dryRun = true;
} else {
	Dialog.create("StarDist: segment a folder with StarDist-Fiji");
	Dialog.addDirectory("Images to segment", "");
	Dialog.addDirectory("Output folder (labels + ROI sets)", "");
	Dialog.addFile("Model (StarDist-Fiji zip)", model);
	Dialog.addString("Probability threshold", probThresh);
	Dialog.addString("NMS overlap threshold", nmsThresh);
	Dialog.addString("Normalisation: low percentile", pLow);
	Dialog.addString("Normalisation: high percentile", pHigh);
	Dialog.addString("Tiles", nTiles);
	Dialog.show();
	input = Dialog.getString();
	output = Dialog.getString();
	model = Dialog.getString();
	probThresh = Dialog.getString();
	nmsThresh = Dialog.getString();
	pLow = Dialog.getString();
	pHigh = Dialog.getString();
	nTiles = Dialog.getString();
}
if (input == "" || output == "" || model == "")
	exit(usage);
input = trimSeparator(input);
output = trimSeparator(output);
if (!File.exists(model))
	exit("model file not found: " + model + "\nWrite it with: fijiport export MODEL_DIR -o model.zip --fiji-zip stardist_fiji.zip");
if (!File.isDirectory(input))
	exit("input folder not found: " + input + "\n" + usage);
if (input == output)
	exit("the output folder must differ from the input folder (originals are never overwritten)");
List.setCommands;
if (!dryRun && (List.get("Command From Macro") == "" || List.get("StarDist 2D") == ""))
	exit("StarDist-Fiji is not installed (no 'StarDist 2D' command): in Fiji, Help > Update... > "
		+ "Manage update sites, tick CSBDeep and StarDist, apply and restart");
names = imageFiles(input);
if (names.length == 0)
	exit("no .tif/.tiff images in " + input);
if (!dryRun) File.makeDirectory(output);
setBatchMode(true);
for (i = 0; i < names.length; i++)
	segment(names[i]);
print("stardist_segment_folder: " + names.length + " image(s) -> " + output);

function segment(name) {
	open(input + File.separator + name);
	roiManager("reset");
	options = "command=[de.csbdresden.stardist.StarDist2D], args=['input':'" + getTitle() + "', "
		+ "'modelChoice':'Model (.zip) from File', 'modelFile':'" + model + "', 'normalizeInput':'true', "
		+ "'percentileBottom':'" + pLow + "', 'percentileTop':'" + pHigh + "', 'probThresh':'" + probThresh + "', "
		+ "'nmsThresh':'" + nmsThresh + "', 'outputType':'Both', 'nTiles':'" + nTiles + "', 'excludeBoundary':'2', "
		+ "'roiPosition':'Automatic', 'verbose':'false', 'showCsbdeepProgress':'false', 'showProbAndDist':'false'], process=[false]";
	if (dryRun) {
		print("RUN[Command From Macro] " + options);
		close("*");
		return;
	}
	run("Command From Macro", options);
	if (!isOpen("Label Image"))
		exit("StarDist-Fiji produced no label image for " + name);
	selectWindow("Label Image");
	tmp = output + File.separator + ".part_" + name;
	saveAs("Tiff", tmp);
	target = output + File.separator + name;
	if (File.exists(target))
		File.delete(target);
	File.rename(tmp, target);
	base = name;
	dot = lastIndexOf(base, ".");
	if (dot > 0) base = substring(base, 0, dot);
	if (roiManager("count") > 0)
		roiManager("save", output + File.separator + base + ".zip");
	close("*");
}

function imageFiles(folder) {
	list = getFileList(folder);
	keep = newArray(0);
	for (i = 0; i < list.length; i++) {
		lower = toLowerCase(list[i]);
		if (endsWith(lower, ".tif") || endsWith(lower, ".tiff"))
			keep = Array.concat(keep, list[i]);
	}
	return keep;
}

function trimSeparator(path) {
	while (lengthOf(path) > 1 && (endsWith(path, "/") || endsWith(path, "\\")))
		path = substring(path, 0, lengthOf(path) - 1);
	return path;
}
