// care_predict_folder.ijm - CARE restoration of every image of a folder with CSBDeep-Fiji ("Run your network"),
//   with tiling and the normalisation percentiles the model was trained with; results are saved under the
//   input names in the output folder.
//
// Plugins needed: Fiji with the CSBDeep update site (Help > Update... > Manage update sites > CSBDeep),
//   CSBDeep-Fiji 0.6 with TensorFlow Java 1.15.0. The model is the TensorFlow SavedModel zip written by
//   `fijiport export MODEL -o model.zip --fiji-zip care_fiji.zip`, checked on TensorFlow 1.13.1, 1.15.0 and
//   2.10.1 by `fijiport validate --runtimes`. The plugin cannot run in fijiport's tests: they check the option
//   string this macro builds against the keys CSBDeep-Fiji parses, and its "not installed" exit in plain ImageJ 1.53t.
// GPU: Edit > Options > TensorFlow..., choose a GPU build of TensorFlow 1.15 and restart Fiji; it needs CUDA 10.0
//   and cuDNN >= 7.4 (Linux/Windows; macOS runs on the CPU). More tiles (ntiles) lower the GPU memory needed.
// From the menu: Plugins > fijiport > care predict folder (after `fijiport macros install --fiji Fiji.app`);
//   a dialog asks for the parameters. `fijiport export --fiji-zip` writes a copy with this model's values filled in.
// Batch / headless (ImageJ's option syntax, key=[a value with spaces]):
//   ImageJ-linux64 --headless --console -macro care_predict_folder.ijm "input=[DIR] output=[DIR] model=[care_fiji.zip]"
//   optional: ntiles=8 p_low=3 p_high=99.8 block_multiple=32 overlap=32 normalize_input=true dry_run=false
//   normalize_input=false for Noise2Void zips from fijiport: their graph holds n2v's mean/std normalisation.
//   dry_run=true prints each plugin call instead of running it.
// Cite: Weigert et al., Content-aware image restoration, Nature Methods 15, 1090-1097 (2018),
//   https://doi.org/10.1038/s41592-018-0216-7

// defaults; `fijiport export` fills in the model's own values on the lines marked fijiport:KEY
var model = "";  // fijiport:model
var pLow = "3";  // fijiport:p_low
var pHigh = "99.8";  // fijiport:p_high
var nTiles = "8";  // fijiport:ntiles
var blockMultiple = "32";  // fijiport:block_multiple
var overlap = "32";  // fijiport:overlap
var normalizeInput = "true";  // fijiport:normalize_input
var input = "";
var output = "";
var dryRun = false;

usage = "usage: input=[FOLDER] output=[FOLDER] model=[MODEL.zip] (optional: ntiles=" + nTiles + " p_low=" + pLow
	+ " p_high=" + pHigh + " block_multiple=" + blockMultiple + " overlap=" + overlap
	+ " normalize_input=" + normalizeInput + " dry_run=false)";
args = getArgument();
if (args != "") {
	input = call("ij.Macro.getValue", args, "input", "");
	output = call("ij.Macro.getValue", args, "output", "");
	model = call("ij.Macro.getValue", args, "model", model);
	nTiles = call("ij.Macro.getValue", args, "ntiles", nTiles);
	pLow = call("ij.Macro.getValue", args, "p_low", pLow);
	pHigh = call("ij.Macro.getValue", args, "p_high", pHigh);
	blockMultiple = call("ij.Macro.getValue", args, "block_multiple", blockMultiple);
	overlap = call("ij.Macro.getValue", args, "overlap", overlap);
	normalizeInput = call("ij.Macro.getValue", args, "normalize_input", normalizeInput);
	if (call("ij.Macro.getValue", args, "dry_run", "false") == "true") dryRun = true;
} else {
	Dialog.create("CARE: restore a folder with CSBDeep-Fiji");
	Dialog.addDirectory("Images to restore", "");
	Dialog.addDirectory("Output folder", "");
	Dialog.addFile("Model (CSBDeep zip)", model);
	Dialog.addString("Tiles", nTiles);
	Dialog.addString("Normalisation: low percentile", pLow);
	Dialog.addString("Normalisation: high percentile", pHigh);
	Dialog.addString("Block multiple (2^depth)", blockMultiple);
	Dialog.addString("Tile overlap (px)", overlap);
	Dialog.addCheckbox("Normalise input by percentiles (off for N2V zips: their graph normalises)", normalizeInput == "true");
	Dialog.show();
	input = Dialog.getString();
	output = Dialog.getString();
	model = Dialog.getString();
	nTiles = Dialog.getString();
	pLow = Dialog.getString();
	pHigh = Dialog.getString();
	blockMultiple = Dialog.getString();
	overlap = Dialog.getString();
	if (Dialog.getCheckbox()) normalizeInput = "true"; else normalizeInput = "false";
}
if (input == "" || output == "" || model == "")
	exit(usage);
input = trimSeparator(input);
output = trimSeparator(output);
if (!File.exists(model))
	exit("model file not found: " + model + "\nWrite it with: fijiport export MODEL_DIR -o model.zip --fiji-zip care_fiji.zip");
if (!File.isDirectory(input))
	exit("input folder not found: " + input + "\n" + usage);
if (input == output)
	exit("the output folder must differ from the input folder (originals are never overwritten)");
List.setCommands;
if (!dryRun && List.get("Run your network") == "")
	exit("CSBDeep-Fiji is not installed (no 'Run your network' command): in Fiji, Help > Update... > "
		+ "Manage update sites, tick CSBDeep, apply and restart");
names = imageFiles(input);
if (names.length == 0)
	exit("no .tif/.tiff images in " + input);
if (!dryRun) File.makeDirectory(output);
setBatchMode(true);
for (i = 0; i < names.length; i++)
	restore(names[i]);
print("care_predict_folder: " + names.length + " image(s) -> " + output);

function restore(name) {
	open(input + File.separator + name);
	source = getImageID();
	options = "input=[" + getTitle() + "] normalizeinput=" + normalizeInput + " percentilebottom=" + pLow + " percentiletop=" + pHigh
		+ " clip=false ntiles=" + nTiles + " blockmultiple=" + blockMultiple + " overlap=" + overlap
		+ " batchsize=1 modelfile=[" + model + "] showprogressdialog=false";
	if (dryRun) {
		print("RUN[Run your network] " + options);
		close("*");
		return;
	}
	run("Run your network", options);
	if (getImageID() == source)
		exit("CSBDeep-Fiji produced no result for " + name);
	tmp = output + File.separator + ".part_" + name;
	saveAs("Tiff", tmp);
	target = output + File.separator + name;
	if (File.exists(target))
		File.delete(target);
	File.rename(tmp, target);
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
