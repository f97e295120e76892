namespace Pip.Checkpoints;

/// <summary>Options of <see cref="CheckpointWriter.Save"/>.</summary>
public sealed record CheckpointSaveOptions
{
    /// <summary>Replace a destination folder that exists and is not empty (default false: refuse).</summary>
    public bool Overwrite { get; init; }

    /// <summary>The shard size limit in bytes of tensor data (default 5 GB, as Hugging Face).</summary>
    public long MaxShardBytes { get; init; } = SafeTensorsWriter.DefaultMaxShardBytes;

    /// <summary>Files copied into the checkpoint under their own names (tokenizer files, <c>generation_config.json</c>, ...).</summary>
    public IReadOnlyList<string> ExtraFiles { get; init; } = [];
}

/// <summary>Writes a whole Hugging Face checkpoint folder, all or nothing.</summary>
/// <remarks>
/// Everything (<c>config.json</c>, the safetensors weights, the extra files) is written into a temporary sibling folder
/// which is renamed into place at the end. An existing non-empty destination is refused unless
/// <see cref="CheckpointSaveOptions.Overwrite"/> is set; it is then moved aside, the new folder moved in, and the old
/// one deleted. An exception or a cancellation before that point leaves the destination untouched and removes the
/// temporary folder.
/// </remarks>
public static class CheckpointWriter
{
    /// <summary>Writes a checkpoint folder.</summary>
    /// <param name="destinationFolder">The folder to create (or replace, with <see cref="CheckpointSaveOptions.Overwrite"/>).</param>
    /// <param name="config">The configuration, saved as <c>config.json</c>.</param>
    /// <param name="tensors">The weights, in the order to distribute them over shards; each source's bytes are
    /// streamed when its turn comes.</param>
    /// <param name="options">Options; null for the defaults.</param>
    /// <param name="cancellationToken">Cancels the save; the destination is then left as it was.</param>
    /// <exception cref="IOException">The destination exists and is not empty, and overwriting was not asked for; or it
    /// is a file.</exception>
    /// <exception cref="FileNotFoundException">An extra file does not exist.</exception>
    /// <exception cref="ArgumentException">The configuration is inconsistent, tensor names repeat, or an extra file's
    /// name collides with another file of the checkpoint.</exception>
    public static void Save(string destinationFolder, IModelConfig config, IEnumerable<SafeTensorSource> tensors, CheckpointSaveOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(destinationFolder);
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(tensors);
        options ??= new CheckpointSaveOptions();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxShardBytes, nameof(options));

        var destination = Path.TrimEndingDirectorySeparator(Path.GetFullPath(destinationFolder));
        var parent = Path.GetDirectoryName(destination)
            ?? throw new ArgumentException($"Cannot write a checkpoint to the root folder '{destination}'.", nameof(destinationFolder));
        var name = Path.GetFileName(destination);

        if (File.Exists(destination))
            throw new IOException($"Cannot save the checkpoint to '{destination}': it is a file.");
        var destinationExists = Directory.Exists(destination);
        var destinationNonEmpty = destinationExists && Directory.EnumerateFileSystemEntries(destination).Any();
        if (destinationNonEmpty && !options.Overwrite)
            throw new IOException($"Cannot save the checkpoint to '{destination}': the folder exists and is not empty (set Overwrite to replace it).");

        var configText = config.Serialize();
        var extras = CheckExtraFiles(options.ExtraFiles);

        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{name}.pip-tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            File.WriteAllText(Path.Combine(temp, CheckpointFolder.ConfigFileName), configText, new System.Text.UTF8Encoding(false));
            SafeTensorsWriter.WriteSharded(temp, tensors, options.MaxShardBytes, cancellationToken);
            foreach (var extra in extras)
            {
                cancellationToken.ThrowIfCancellationRequested();
                File.Copy(extra, Path.Combine(temp, Path.GetFileName(extra)));
            }
            cancellationToken.ThrowIfCancellationRequested();
            MoveIntoPlace(temp, destination, parent, name);
        }
        catch
        {
            TryDeleteFolder(temp);
            throw;
        }
    }

    private static List<string> CheckExtraFiles(IReadOnlyList<string> extraFiles)
    {
        var result = new List<string>();
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var extra in extraFiles ?? [])
        {
            ArgumentException.ThrowIfNullOrEmpty(extra, nameof(extraFiles));
            var full = Path.GetFullPath(extra);
            if (!File.Exists(full))
                throw new FileNotFoundException($"The extra file '{full}' to copy into the checkpoint does not exist.", full);
            var fileName = Path.GetFileName(full);
            if (IsReserved(fileName))
                throw new ArgumentException($"The extra file '{full}' would overwrite the checkpoint's own '{fileName}'.", nameof(extraFiles));
            if (!names.Add(fileName))
                throw new ArgumentException($"Two extra files are named '{fileName}'.", nameof(extraFiles));
            result.Add(full);
        }
        return result;
    }

    private static bool IsReserved(string fileName) =>
        fileName.Equals(CheckpointFolder.ConfigFileName, StringComparison.OrdinalIgnoreCase)
        || fileName.Equals(SafeTensorsIndex.FileName, StringComparison.OrdinalIgnoreCase)
        || (fileName.StartsWith("model", StringComparison.OrdinalIgnoreCase) && fileName.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase));

    private static void MoveIntoPlace(string temp, string destination, string parent, string name)
    {
        if (!Directory.Exists(destination))
        {
            Directory.Move(temp, destination);
            return;
        }

        var old = Path.Combine(parent, $".{name}.pip-old-{Guid.NewGuid():N}");
        Directory.Move(destination, old);
        try
        {
            Directory.Move(temp, destination);
        }
        catch
        {
            Directory.Move(old, destination);
            throw;
        }
        // The new checkpoint is in place; a leftover old copy (files still open elsewhere, on Windows) is not an error.
        TryDeleteFolder(old);
    }

    private static void TryDeleteFolder(string path)
    {
        try
        {
            if (Directory.Exists(path))
                Directory.Delete(path, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
