// rois_to_masks.ijm - 16-bit label masks from ImageJ ROI sets: for every image of a folder with a ROI set
//   <image base name>.zip (saved from the ROI Manager with More > Save...), ROI i of the set becomes value i
//   of masks/<image name>; where ROIs overlap the later one wins. The masks equal those
//   `fijiport prepare stardist --images IMAGES --rois ROIS` builds in Python from the same zips (tested).
//
// Plugins needed: none (ImageJ 1.x macro language). Tested with ImageJ 1.53t (Debian package `imagej`,
//   batch mode under Xvfb) by fijiport's test suite; runs the same in Fiji.
// From the menu: Plugins > fijiport > rois to masks (after `fijiport macros install --fiji Fiji.app`),
//   or Plugins > Macros > Run... ; a dialog asks for the three folders.
// Batch / headless (ImageJ's option syntax, key=[a value with spaces]):
//   ImageJ -batch rois_to_masks.ijm "images=[DIR] rois=[DIR] masks=[DIR]"
//   images     folder of 2D images (.tif/.tiff); only read, for their size
//   rois       folder of ROI set zips named after the images (nuclei_01.tif -> nuclei_01.zip)
//   masks      folder for the label masks, named as the images (must differ from the images folder)
//   overwrite  true to replace masks that exist already (default false: refuse)
// Cite: Schneider et al., NIH Image to ImageJ, Nature Methods 2012, https://doi.org/10.1038/nmeth.2089

// settings read by the functions below (macro functions see only `var` globals)
var imagesDir = "";
var roisDir = "";
var masksDir = "";
var overwrite = false;

usage = "usage: images=[FOLDER] rois=[FOLDER] masks=[FOLDER] (optional: overwrite=false)";
args = getArgument();
if (args != "") {
	imagesDir = call("ij.Macro.getValue", args, "images", "");
	roisDir = call("ij.Macro.getValue", args, "rois", "");
	masksDir = call("ij.Macro.getValue", args, "masks", "");
	if (call("ij.Macro.getValue", args, "overwrite", "false") == "true") overwrite = true;
	setBatchMode(true);
} else {
	Dialog.create("ROI sets to label masks");
	Dialog.addDirectory("Images (only read)", "");
	Dialog.addDirectory("ROI sets (<image name>.zip)", "");
	Dialog.addDirectory("Masks (output)", "");
	Dialog.addCheckbox("Replace existing masks", false);
	Dialog.show();
	imagesDir = Dialog.getString();
	roisDir = Dialog.getString();
	masksDir = Dialog.getString();
	overwrite = Dialog.getCheckbox();
	setBatchMode(true);
}
if (imagesDir == "" || roisDir == "" || masksDir == "")
	exit(usage);
imagesDir = trimSeparator(imagesDir);
roisDir = trimSeparator(roisDir);
masksDir = trimSeparator(masksDir);
if (!File.isDirectory(imagesDir))
	exit("images folder not found: " + imagesDir + "\n" + usage);
if (!File.isDirectory(roisDir))
	exit("ROI folder not found: " + roisDir + "\n" + usage);
if (masksDir == imagesDir)
	exit("the masks folder must differ from the images folder (originals are never overwritten): " + masksDir);

names = imageFiles(imagesDir);
if (names.length == 0)
	exit("no .tif/.tiff images in " + imagesDir);
paired = 0;
for (i = 0; i < names.length; i++) {
	if (File.exists(roisDir + File.separator + baseName(names[i]) + ".zip")) {
		paired = paired + 1;
		if (!overwrite && File.exists(masksDir + File.separator + names[i]))
			exit("mask exists already: " + masksDir + File.separator + names[i] + "\nPass overwrite=true to replace it.");
	} else {
		print("no ROI set for " + names[i] + " (expected " + roisDir + File.separator + baseName(names[i]) + ".zip); skipped");
	}
}
if (paired == 0)
	exit("no image in " + imagesDir + " has a ROI set <image base name>.zip in " + roisDir);
File.makeDirectory(masksDir);
done = 0;
for (i = 0; i < names.length; i++)
	done = done + paintMask(names[i]);
print("rois_to_masks: " + done + " mask(s) -> " + masksDir);

function paintMask(name) {
	zip = roisDir + File.separator + baseName(name) + ".zip";
	if (!File.exists(zip))
		return 0;
	open(imagesDir + File.separator + name);
	if (nSlices > 1) {
		print("skipped " + name + ": ROI sets describe 2D images, it has " + nSlices + " slices");
		close("*");
		return 0;
	}
	width = getWidth();
	height = getHeight();
	close("*");
	roiManager("reset");
	roiManager("open", zip);
	n = roiManager("count");
	if (n >= 65535)
		exit(zip + " holds " + n + " ROIs; a 16-bit mask holds at most 65535");
	newImage("fijiport_mask", "16-bit black", width, height, 1);
	for (r = 0; r < n; r++) {
		roiManager("select", r);
		if (selectionType() >= 5 && selectionType() != 9)
			exit("ROI " + (r + 1) + " of " + zip + " is a line or point selection, not an area; keep only area ROIs");
		setColor(r + 1);
		fill();
	}
	run("Select None");
	tmp = masksDir + File.separator + ".part_" + name;
	saveAs("Tiff", tmp);
	target = masksDir + File.separator + name;
	if (File.exists(target))
		File.delete(target);
	if (!File.rename(tmp, target))
		exit("could not write " + target);
	close("*");
	roiManager("reset");
	return 1;
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
