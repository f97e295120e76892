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

    /// <summary>
    /// Writes more files straight into the folder being built (the temporary folder, before it is moved into place),
    /// so that files made for the checkpoint (a tokenizer, a report) need no staging folder of their own; it gets the
    /// folder and the save's cancellation token. Null for none. It must not write the checkpoint's own files
    /// (<c>config.json</c>, <c>model*.safetensors</c>, the shard index) or the names of <see cref="ExtraFiles"/>.
    /// </summary>
    public Action<string, CancellationToken>? WriteExtraFiles { get; init; }
}

/// <summary>Writes a whole Hugging Face checkpoint folder, all or nothing.</summary>
/// <remarks>
/// Everything (<c>config.json</c>, the safetensors weights, the extra files) is written into a temporary sibling folder
/// which is renamed into place at the end. An existing non-empty destination is refused unless
/// <see cref="CheckpointSaveOptions.Overwrite"/> is set; it is then moved aside, the new folder moved in, and the old
/// one deleted. An exception or a cancellation before that point leaves the destination untouched and removes the
/// temporary folder.
/// <para>The temporary folder is named <c>.NAME.pip-tmp-PID-GUID</c> (the moved-aside old folder <c>.NAME.pip-old-PID-GUID</c>)
/// after the writing process. A write that was killed (kill -9, power loss) leaves it behind; the next write to the same
/// destination removes such folders when their process is no longer running, and puts a moved-aside old folder back
/// when the destination itself is missing (the kill came between the two moves).</para>
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

        // First, so that an old checkpoint put back from an interrupted write counts as an existing destination below.
        ClearStaleTemporaryFolders(destination);
        if (File.Exists(destination))
            throw new IOException($"Cannot save the checkpoint to '{destination}': it is a file.");
        var destinationExists = Directory.Exists(destination);
        var destinationNonEmpty = destinationExists && Directory.EnumerateFileSystemEntries(destination).Any();
        if (destinationNonEmpty && !options.Overwrite)
            throw new IOException($"Cannot save the checkpoint to '{destination}': the folder exists and is not empty (set Overwrite to replace it).");

        var configText = config.Serialize();
        var extras = CheckExtraFiles(options.ExtraFiles);

        Directory.CreateDirectory(parent);
        var temp = TemporarySiblingPath(destination);
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
            if (options.WriteExtraFiles is { } writeExtra)
            {
                cancellationToken.ThrowIfCancellationRequested();
                writeExtra(temp, cancellationToken);
            }
            cancellationToken.ThrowIfCancellationRequested();
            MoveIntoPlace(temp, destination);
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

    private static void MoveIntoPlace(string temp, string destination)
    {
        if (!Directory.Exists(destination))
        {
            Directory.Move(temp, destination);
            return;
        }

        var old = TemporarySiblingPath(destination, old: true);
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

    /// <summary>
    /// Removes the temporary folders that earlier, interrupted writes to <paramref name="destination"/> left beside it:
    /// only folders named as this writer names them (<c>.NAME.pip-tmp-PID-GUID</c>, <c>.NAME.pip-old-PID-GUID</c>) whose
    /// process is no longer running. A stale old folder is moved back when the destination is missing (the write was
    /// killed between moving the old folder aside and moving the new one in), else deleted.
    /// </summary>
    /// <param name="destination">The folder about to be written (any folder written the same way: build beside it, move into place).</param>
    /// <returns>The folders removed or restored.</returns>
    public static IReadOnlyList<string> ClearStaleTemporaryFolders(string destination)
    {
        ArgumentException.ThrowIfNullOrEmpty(destination);
        destination = Path.TrimEndingDirectorySeparator(Path.GetFullPath(destination));
        var parent = Path.GetDirectoryName(destination);
        var name = Path.GetFileName(destination);
        var cleared = new List<string>();
        if (parent is null || !Directory.Exists(parent))
            return cleared;
        var pattern = new System.Text.RegularExpressions.Regex(
            $@"^\.{System.Text.RegularExpressions.Regex.Escape(name)}\.pip-(tmp|old)-(\d+)-[0-9a-f]{{32}}$", System.Text.RegularExpressions.RegexOptions.CultureInvariant);
        // Old folders first, so that a missing destination is restored before anything else is considered.
        foreach (var folder in Directory.EnumerateDirectories(parent, $".{name}.pip-*").OrderByDescending(f => f.Contains(".pip-old-", StringComparison.Ordinal)).ToList())
        {
            var match = pattern.Match(Path.GetFileName(folder));
            if (!match.Success || !int.TryParse(match.Groups[2].ValueSpan, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid) || IsRunning(pid))
                continue;
            if (match.Groups[1].Value == "old" && !Directory.Exists(destination) && !File.Exists(destination))
            {
                try
                {
                    Directory.Move(folder, destination);
                    cleared.Add(folder);
                }
                catch (IOException)
                {
                }
                continue;
            }
            TryDeleteFolder(folder);
            if (!Directory.Exists(folder))
                cleared.Add(folder);
        }
        return cleared;
    }

    /// <summary>
    /// A new path beside <paramref name="destination"/> for the folder being built (<c>.NAME.pip-tmp-PID-GUID</c>) or for
    /// the old folder moved aside while the new one moves in (<c>.NAME.pip-old-PID-GUID</c>), named after this process so
    /// that <see cref="ClearStaleTemporaryFolders"/> can tell when it is stale. Nothing is created.
    /// </summary>
    /// <param name="destination">The folder to write.</param>
    /// <param name="old">Whether the path is for the moved-aside old folder.</param>
    /// <returns>The full path.</returns>
    public static string TemporarySiblingPath(string destination, bool old = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(destination);
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(destination));
        var parent = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{full}' has no parent folder.", nameof(destination));
        return Path.Combine(parent, $".{Path.GetFileName(full)}.pip-{(old ? "old" : "tmp")}-{Environment.ProcessId}-{Guid.NewGuid():N}");
    }

    /// <summary>Whether a process with this id is running (this process counts as running: its own writes are live).</summary>
    private static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId)
            return true;
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
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
