// deepimagej_predict_folder.ijm - run a bioimage.io model on every image of a folder with deepImageJ 3.1,
//   saving the outputs under the input names. StarDist models (name containing "StarDist" and a
//   config.stardist block, as `fijiport export` writes them) go through deepImageJ's StarDist command with the
//   model's own probability threshold and normalisation percentiles, read from its rdf.yaml.
//
// Plugins needed: Fiji with deepImageJ 3.1 (update site "DeepImageJ"), which runs models through JDLL on
//   TensorFlow 1.15 / 2.10.1 or onnxruntime 1.13.1; fijiport checks its packages on exactly those runtimes
//   (`fijiport validate --runtimes`). Macro keys are deepImageJ 3.1's snake_case ones (July 2025 on; older
//   camelCase keys silently match nothing). The plugin cannot run in fijiport's tests: they check the option
//   strings this macro builds against those keys, and its "not installed" exit in plain ImageJ 1.53t.
// The model: an unzipped bioimage.io package folder (rdf.yaml inside), e.g. installed with
//   Plugins > DeepImageJ > DeepImageJ Install Model into Fiji.app/models/.
// GPU: deepImageJ downloads its engines into Fiji.app/engines and prefers GPU builds on Linux/Windows x86_64;
//   they need the matching system CUDA (TF 1.15: CUDA 10.0; TF 2.10: CUDA 11.2; onnxruntime 1.13: CUDA 11.6).
//   StarDist's postprocessing runs on the CPU.
// From the menu: Plugins > fijiport > deepimagej predict folder (after `fijiport macros install --fiji Fiji.app`).
// Batch / headless (ImageJ's option syntax, key=[a value with spaces]):
//   ImageJ-linux64 --headless --console -macro deepimagej_predict_folder.ijm "model=[Fiji.app/models/my_model] input=[DIR] output=[DIR]"
//   optional for StarDist models: prob_thresh=P min_percentile=L max_percentile=H (default: the model's own values)
//   dry_run=true prints each plugin call instead of running it.
// Cite: Gomez-de-Mariscal et al., DeepImageJ, Nature Methods 18, 1192-1195 (2021),
//   https://doi.org/10.1038/s41592-021-01262-9

// settings read by the functions below (macro functions see only `var` globals)
var model = "";  // fijiport:model
var input = "";
var output = "";
var probThresh = "";
var pLow = "";
var pHigh = "";
var dryRun = false;

usage = "usage: model=[MODEL_FOLDER] input=[FOLDER] output=[FOLDER] (optional: prob_thresh=P min_percentile=L max_percentile=H dry_run=false)";
args = getArgument();
if (args != "") {
	model = call("ij.Macro.getValue", args, "model", model);
	input = call("ij.Macro.getValue", args, "input", "");
	output = call("ij.Macro.getValue", args, "output", "");
	probThresh = call("ij.Macro.getValue", args, "prob_thresh", "");
	pLow = call("ij.Macro.getValue", args, "min_percentile", "");
	pHigh = call("ij.Macro.getValue", args, "max_percentile", "");
	if (call("ij.Macro.getValue", args, "dry_run", "false") == "true") dryRun = true;
} else {
	Dialog.create("deepImageJ: predict a folder");
	Dialog.addDirectory("Model folder (unzipped, with rdf.yaml)", model);
	Dialog.addDirectory("Images", "");
	Dialog.addDirectory("Output folder", "");
	Dialog.addMessage("StarDist models only (empty: the model's own values):");
	Dialog.addString("Probability threshold", "");
	Dialog.addString("Normalisation: low percentile", "");
	Dialog.addString("Normalisation: high percentile", "");
	Dialog.show();
	model = Dialog.getString();
	input = Dialog.getString();
	output = Dialog.getString();
	probThresh = Dialog.getString();
	pLow = Dialog.getString();
	pHigh = Dialog.getString();
}
if (model == "" || input == "" || output == "")
	exit(usage);
model = trimSeparator(model);
input = trimSeparator(input);
output = trimSeparator(output);
rdf = model + File.separator + "rdf.yaml";
if (!File.exists(rdf))
	rdf = model + File.separator + "bioimageio.yaml";
if (endsWith(toLowerCase(model), ".zip"))
	exit("pass the unzipped model folder, not the zip: install it with Plugins > DeepImageJ > DeepImageJ Install Model "
		+ "(it goes to Fiji.app/models/) or unzip it, then pass that folder as model=[...]");
if (!File.exists(rdf))
	exit("model folder not found or without rdf.yaml: " + model);
if (!File.isDirectory(input))
	exit("input folder not found: " + input + "\n" + usage);
if (input == output)
	exit("the output folder must differ from the input folder (originals are never overwritten)");
text = File.openAsString(rdf);
stardist = false;
if (indexOf(toLowerCase(yamlValue(text, "name")), "stardist") >= 0 && indexOf(text, "\n  stardist:") >= 0) stardist = true;
command = "DeepImageJ Run";
if (stardist) {
	command = "DeepImageJ StarDist";
	if (probThresh == "") probThresh = yamlValue(substring(text, indexOf(text, "\n  stardist:")), "prob");
	if (pLow == "") pLow = yamlValue(text, "min_percentile");
	if (pHigh == "") pHigh = yamlValue(text, "max_percentile");
	if (probThresh == "" || pLow == "" || pHigh == "")
		exit("could not read the StarDist thresholds and percentiles from " + rdf + "; pass prob_thresh=, min_percentile=, max_percentile=");
}
List.setCommands;
if (!dryRun && List.get(command) == "")
	exit("deepImageJ is not installed (no '" + command + "' command): in Fiji, Help > Update... > "
		+ "Manage update sites, tick DeepImageJ, apply and restart");
names = imageFiles(input);
if (names.length == 0)
	exit("no .tif/.tiff images in " + input);
if (!dryRun) File.makeDirectory(output);
setBatchMode(true);
for (i = 0; i < names.length; i++) {
	if (stardist) segment(names[i]);
	else predict(names[i], i);
}
print("deepimagej_predict_folder: " + names.length + " image(s) -> " + output);

function segment(name) {
	open(input + File.separator + name);
	source = getImageID();
	options = "model=[" + model + "] prob_thresh=" + probThresh + " min_percentile=" + pLow + " max_percentile=" + pHigh;
	if (dryRun) {
		print("RUN[DeepImageJ StarDist] " + options);
		close("*");
		return;
	}
	run("DeepImageJ StarDist", options);
	if (getImageID() == source)
		exit("deepImageJ StarDist produced no label image for " + name);
	saveAtomically(output, name);
	close("*");
}

function predict(name, index) {
	scratch = output + File.separator + ".deepimagej_" + index;
	options = "model_path=[" + model + "] input_path=[" + input + File.separator + name + "] output_folder=[" + scratch
		+ "] display_output=null";
	if (dryRun) {
		print("RUN[DeepImageJ Run] " + options);
		return;
	}
	File.makeDirectory(scratch);
	run("DeepImageJ Run", options);
	made = getFileList(scratch);
	if (made.length == 0)
		exit("deepImageJ wrote no output for " + name + " into " + scratch);
	base = name;
	dot = lastIndexOf(base, ".");
	if (dot > 0) base = substring(base, 0, dot);
	for (j = 0; j < made.length; j++) {
		target = output + File.separator + name;
		if (made.length > 1) target = output + File.separator + base + "_" + made[j];
		if (File.exists(target)) File.delete(target);
		File.rename(scratch + File.separator + made[j], target);
	}
	File.delete(scratch);
}

function saveAtomically(folder, name) {
	tmp = folder + File.separator + ".part_" + name;
	saveAs("Tiff", tmp);
	target = folder + File.separator + name;
	if (File.exists(target))
		File.delete(target);
	File.rename(tmp, target);
}

// the value of the first `key: value` line of a YAML text (quotes removed), or ""
function yamlValue(text, key) {
	lines = split(text, "\n");
	for (i = 0; i < lines.length; i++) {
		line = String.trim(lines[i]);
		if (startsWith(line, key + ":")) {
			value = String.trim(substring(line, lengthOf(key) + 1));
			if (startsWith(value, "'") || startsWith(value, "\"")) value = substring(value, 1, lengthOf(value) - 1);
			return value;
		}
	}
	return "";
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
