// make_stardist_masks.ijm - StarDist training data from a folder of 2D images: auto-threshold, Analyze
//   Particles into the ROI Manager, a pause to fix the ROIs by hand, then a 16-bit label mask per image
//   (ROI i -> value i) saved as masks/<name> next to a copy of the image in images/<name>, and the ROIs
//   as rois/<image base name>.zip. Feed the result to: fijiport prepare stardist --images OUT/images --masks OUT/masks
//
// Plugins needed: none (ImageJ 1.x macro language). Tested with ImageJ 1.53t (Debian package `imagej`,
//   batch mode under Xvfb) by fijiport's test suite; runs the same in Fiji.
// From the menu: Plugins > fijiport > make stardist masks (after `fijiport macros install --fiji Fiji.app`),
//   or Plugins > Macros > Run... . A dialog asks for the parameters; for each image you get a pause to delete
//   wrong ROIs and add missing ones (draw, then press T) before the mask is painted.
// Batch / headless (no pause; the same keys in ImageJ's option syntax, key=[a value with spaces]):
//   ImageJ -batch make_stardist_masks.ijm "input=[DIR] output=[DIR] method=Huang min_size=20"
//   input     folder of 2D grayscale images (.tif/.tiff); they are only read
//   output    folder that gets images/, masks/ and rois/ (must not be the input folder)
//   method    auto-threshold method (default Huang; any of Image > Adjust > Threshold's methods)
//   min_size  smallest object kept, in pixels (default 20)
//   background dark (bright objects, the default) or light
//   overwrite true to replace masks that exist already (default false: refuse)
// Objects are traced 8-connected with holes filled ("include"), as Analyze Particles does.
// Cite: Schmidt et al., Cell Detection with Star-Convex Polygons, MICCAI 2018,
//   https://doi.org/10.1007/978-3-030-00934-2_30 ; Schneider et al., NIH Image to ImageJ, Nature Methods 2012,
//   https://doi.org/10.1038/nmeth.2089

// settings read by the functions below (macro functions see only `var` globals)
var input = "";
var output = "";
var method = "Huang";
var minSize = "20";
var background = "dark";
var overwrite = false;
var batch = false;

usage = "usage: input=[FOLDER] output=[FOLDER] (optional: method=Huang min_size=20 background=dark overwrite=false)";
args = getArgument();
if (args != "") batch = true;
if (batch) {
	input = call("ij.Macro.getValue", args, "input", "");
	output = call("ij.Macro.getValue", args, "output", "");
	method = call("ij.Macro.getValue", args, "method", "Huang");
	minSize = call("ij.Macro.getValue", args, "min_size", "20");
	background = call("ij.Macro.getValue", args, "background", "dark");
	if (call("ij.Macro.getValue", args, "overwrite", "false") == "true") overwrite = true;
} else {
	Dialog.create("Make StarDist masks");
	Dialog.addDirectory("Images (only read)", "");
	Dialog.addDirectory("Output (gets images/, masks/, rois/)", "");
	Dialog.addChoice("Threshold method", getList("threshold.methods"), "Huang");
	Dialog.addNumber("Smallest object (pixels)", 20);
	Dialog.addChoice("Background", newArray("dark", "light"), "dark");
	Dialog.addCheckbox("Replace existing masks", false);
	Dialog.show();
	input = Dialog.getString();
	output = Dialog.getString();
	method = Dialog.getChoice();
	minSize = "" + Dialog.getNumber();
	background = Dialog.getChoice();
	overwrite = Dialog.getCheckbox();
}
if (input == "" || output == "")
	exit(usage);
input = trimSeparator(input);
output = trimSeparator(output);
if (!File.isDirectory(input))
	exit("input folder not found: " + input + "\n" + usage);
methods = getList("threshold.methods");
if (!hasValue(methods, method))
	exit("unknown threshold method '" + method + "'; use one of: " + String.join(methods, ", "));
if (background != "dark" && background != "light")
	exit("background must be dark or light, not '" + background + "'");
if (isNaN(parseFloat(minSize)))
	exit("min_size must be a number of pixels, not '" + minSize + "'");
if (output == input || output + File.separator + "images" == input)
	exit("the output folder must not be the input folder (originals are never overwritten): " + output);

names = imageFiles(input);
if (names.length == 0)
	exit("no .tif/.tiff images in " + input);
if (!overwrite) {
	for (i = 0; i < names.length; i++)
		if (File.exists(output + File.separator + "masks" + File.separator + names[i]))
			exit("mask exists already: " + output + File.separator + "masks" + File.separator + names[i]
				+ "\nPass overwrite=true (or tick 'Replace existing masks') to replace it.");
}
File.makeDirectory(output);
File.makeDirectory(output + File.separator + "images");
File.makeDirectory(output + File.separator + "masks");
File.makeDirectory(output + File.separator + "rois");
if (batch) setBatchMode(true);
done = 0;
for (i = 0; i < names.length; i++)
	done = done + processImage(names[i]);
print("make_stardist_masks: " + done + " of " + names.length + " image(s) -> " + output);

function processImage(name) {
	open(input + File.separator + name);
	source = getImageID();
	if (nSlices > 1 || bitDepth() == 24) {
		print("skipped " + name + ": only 2D grayscale images are handled (it has " + nSlices + " slices, " + bitDepth() + " bit)");
		close();
		return 0;
	}
	width = getWidth();
	height = getHeight();
	run("Duplicate...", "title=fijiport_threshold");
	setAutoThreshold(method + " " + background);
	roiManager("reset");
	run("Analyze Particles...", "size=" + minSize + "-Infinity pixel include add");
	close("fijiport_threshold");
	if (!batch) {
		selectImage(source);
		roiManager("show all");
		waitForUser("Fix the ROIs of " + name, "Delete wrong ROIs and draw missing ones (press T to add each to the ROI Manager),\nthen click OK to paint the mask.");
	}
	n = roiManager("count");
	if (n >= 65535)
		exit(name + " has " + n + " ROIs; a 16-bit mask holds at most 65535");
	newImage("fijiport_mask", "16-bit black", width, height, 1);
	mask = getImageID();
	for (r = 0; r < n; r++) {
		roiManager("select", r);
		setColor(r + 1);
		fill();
	}
	run("Select None");
	saveAtomically(mask, output + File.separator + "masks", name);
	base = baseName(name);
	roiPath = output + File.separator + "rois" + File.separator + base + ".zip";
	if (n > 0)
		roiManager("save", roiPath);
	else
		print("no object found in " + name + " (threshold " + method + ", min_size " + minSize + "); its mask is empty");
	copy = output + File.separator + "images" + File.separator + name;
	if (!File.exists(copy))
		File.copy(input + File.separator + name, copy);
	close("*");
	roiManager("reset");
	return 1;
}

// save the image under a temporary name and rename it, so no half-written mask is ever left
function saveAtomically(id, folder, name) {
	selectImage(id);
	tmp = folder + File.separator + ".part_" + name;
	saveAs("Tiff", tmp);
	target = folder + File.separator + name;
	if (File.exists(target))
		File.delete(target);
	if (!File.rename(tmp, target))
		exit("could not write " + target);
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

function baseName(name) {
	dot = lastIndexOf(name, ".");
	if (dot > 0) return substring(name, 0, dot);
	return name;
}

function trimSeparator(path) {
	while (lengthOf(path) > 1 && (endsWith(path, "/") || endsWith(path, "\\")))
		path = substring(path, 0, lengthOf(path) - 1);
	return path;
}

function hasValue(array, value) {
	for (i = 0; i < array.length; i++)
		if (array[i] == value) return true;
	return false;
}
