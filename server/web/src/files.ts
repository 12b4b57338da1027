/** Files the person picked or dropped, as the base64 the API takes. */

export function toBase64(file: Blob): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const url = String(reader.result);
      resolve(url.slice(url.indexOf(",") + 1));
    };
    reader.onerror = () => reject(new Error(`could not read ${file instanceof File ? file.name : "the file"}`));
    reader.readAsDataURL(file);
  });
}

/** Images only, whatever else was dropped. */
export function imagesOf(list: FileList | null | undefined): File[] {
  return Array.from(list ?? []).filter((f) => f.type.startsWith("image/"));
}

/** Make `zone` accept dropped images; `onFiles` gets them. */
export function dropZone(zone: HTMLElement, onFiles: (files: File[]) => void): void {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    onFiles(imagesOf(e.dataTransfer?.files));
  });
}
