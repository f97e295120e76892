using System.Text;
using System.Text.Json;

namespace Pip.Checkpoints;

/// <summary>
/// The index of a sharded safetensors checkpoint (<c>model.safetensors.index.json</c>): which shard file holds
/// which tensor.
/// </summary>
/// <remarks>
/// Loading validates the index: <c>weight_map</c> must map names to shard file names; a shard name must be relative,
/// stay inside the checkpoint folder (no <c>..</c>, no absolute path) and name an existing file. All missing shards
/// are listed in one error.
/// </remarks>
public sealed class SafeTensorsIndex
{
    /// <summary>The standard file name of the index.</summary>
    public const string FileName = "model.safetensors.index.json";

    private SafeTensorsIndex(string indexPath, IReadOnlyDictionary<string, string> weightMap, IReadOnlyList<string> shardFiles, long? totalSize)
    {
        IndexPath = indexPath;
        FolderPath = Path.GetDirectoryName(indexPath)!;
        WeightMap = weightMap;
        ShardFiles = shardFiles;
        TotalSize = totalSize;
    }

    /// <summary>The full path of the index file.</summary>
    public string IndexPath { get; }

    /// <summary>The folder the shard names are relative to.</summary>
    public string FolderPath { get; }

    /// <summary>Tensor name → shard file name (relative to <see cref="FolderPath"/>, as written in the index).</summary>
    public IReadOnlyDictionary<string, string> WeightMap { get; }

    /// <summary>The distinct shard file names, sorted.</summary>
    public IReadOnlyList<string> ShardFiles { get; }

    /// <summary><c>metadata.total_size</c> (bytes of tensor data), or null if absent.</summary>
    public long? TotalSize { get; }

    /// <summary>The full path of a shard named in the index.</summary>
    /// <param name="shardFile">A shard name from <see cref="ShardFiles"/> or <see cref="WeightMap"/>.</param>
    public string ShardPath(string shardFile) => Path.GetFullPath(Path.Combine(FolderPath, shardFile));

    /// <summary>Reads and validates an index file.</summary>
    /// <param name="indexPath">The <c>model.safetensors.index.json</c> file.</param>
    /// <exception cref="CheckpointFormatException">The index is malformed, a shard name is unsafe or shards are missing.</exception>
    public static SafeTensorsIndex Load(string indexPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(indexPath);
        var fullPath = Path.GetFullPath(indexPath);
        var bytes = File.ReadAllBytes(fullPath);
        return Parse(bytes, fullPath);
    }

    internal static SafeTensorsIndex Parse(byte[] json, string fullPath)
    {
        var folder = Path.GetDirectoryName(fullPath)!;
        CheckpointFormatException Error(string problem, string? field = null) => new(fullPath, problem, field);

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(fullPath, $"not valid JSON: {e.Message}", null, e);
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Error("the index must be a JSON object");

            long? totalSize = null;
            if (root.TryGetProperty("metadata", out var metadata) && metadata.ValueKind != JsonValueKind.Null)
            {
                if (metadata.ValueKind != JsonValueKind.Object)
                    throw Error($"'metadata' must be an object, found {metadata.ValueKind}", "metadata");
                if (metadata.TryGetProperty("total_size", out var total) && total.ValueKind != JsonValueKind.Null)
                {
                    // Some writers store total_size as a float (e.g. 1.5e10); accept integral values only.
                    if (total.ValueKind != JsonValueKind.Number)
                        throw Error($"'total_size' must be a number, found {total.ValueKind}", "metadata.total_size");
                    if (total.TryGetInt64(out var t) && t >= 0)
                        totalSize = t;
                    else if (total.TryGetDouble(out var d) && d >= 0 && d == Math.Floor(d) && d < 9.2e18)
                        totalSize = (long)d;
                    else
                        throw Error($"'total_size' must be a non-negative integer, found {total.GetRawText()}", "metadata.total_size");
                }
            }

            if (!root.TryGetProperty("weight_map", out var map))
                throw Error("the index has no 'weight_map'", "weight_map");
            if (map.ValueKind != JsonValueKind.Object)
                throw Error($"'weight_map' must be an object, found {map.ValueKind}", "weight_map");

            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            var shards = new SortedSet<string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw Error($"the shard of tensor '{entry.Name}' must be a file name, found {entry.Value.ValueKind}", entry.Name);
                var shard = entry.Value.GetString()!;
                ValidateShardName(shard, entry.Name, folder, fullPath);
                if (!weightMap.TryAdd(entry.Name, shard))
                    throw Error("the tensor appears twice in 'weight_map'", entry.Name);
                shards.Add(shard);
            }
            if (weightMap.Count == 0)
                throw Error("'weight_map' is empty", "weight_map");

            var missing = shards.Where(s => !File.Exists(Path.Combine(folder, s))).ToList();
            if (missing.Count > 0)
            {
                var list = new StringBuilder();
                foreach (var m in missing)
                    list.Append(list.Length == 0 ? "" : ", ").Append('\'').Append(m).Append('\'');
                throw Error($"{missing.Count} of {shards.Count} shard files are missing from '{folder}': {list}", "weight_map");
            }

            return new SafeTensorsIndex(fullPath, weightMap, shards.ToList().AsReadOnly(), totalSize);
        }
    }

    private static void ValidateShardName(string shard, string tensor, string folder, string indexPath)
    {
        if (shard.Length == 0)
            throw new CheckpointFormatException(indexPath, "the shard file name is empty", tensor);
        if (Path.IsPathRooted(shard) || shard.Contains(':', StringComparison.Ordinal) || shard.Contains('\0', StringComparison.Ordinal))
            throw new CheckpointFormatException(indexPath, $"the shard file name '{shard}' is an absolute path; shards must lie in the checkpoint folder", tensor);
        var segments = shard.Split('/', '\\');
        if (segments.Any(s => s == ".."))
            throw new CheckpointFormatException(indexPath, $"the shard file name '{shard}' leads outside the checkpoint folder ('..')", tensor);
        var folderFull = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)) + Path.DirectorySeparatorChar;
        var shardFull = Path.GetFullPath(Path.Combine(folder, shard));
        if (!shardFull.StartsWith(folderFull, OperatingSystem.IsWindows() ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal))
            throw new CheckpointFormatException(indexPath, $"the shard file name '{shard}' leads outside the checkpoint folder", tensor);
    }
}
