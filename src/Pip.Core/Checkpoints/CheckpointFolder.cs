namespace Pip.Checkpoints;

/// <summary>
/// A Hugging Face model folder with safetensors weights (<c>model.safetensors</c>, or shards listed in
/// <c>model.safetensors.index.json</c>) and a <c>config.json</c>.
/// </summary>
/// <remarks>
/// <para>Pickled PyTorch checkpoints (<c>pytorch_model.bin</c> and the like) are refused: unpickling can execute
/// arbitrary code. Convert them to safetensors first.</para>
/// <para>Shards are opened (memory-mapped and validated) lazily, the first time one of their tensors is asked for;
/// <see cref="Dispose"/> closes all of them. The instance is safe for concurrent reads.</para>
/// </remarks>
public sealed class CheckpointFolder : IDisposable
{
    /// <summary>The file name of the single-file weights.</summary>
    public const string SingleFileName = "model.safetensors";

    /// <summary>The file name of the model configuration.</summary>
    public const string ConfigFileName = "config.json";

    /// <summary>Files besides config and weights that make a model folder usable (tokenizer, generation config), copied
    /// along when a checkpoint is saved from another.</summary>
    public static readonly IReadOnlyList<string> CompanionFileNames =
    [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
        "tokenizer.model", "vocab.json", "merges.txt", "added_tokens.json",
    ];

    private static readonly string[] PickleNames = ["pytorch_model.bin", "pytorch_model.bin.index.json", "model.bin", "consolidated.00.pth", "model.pt", "model.pth", "model.ckpt"];
    private static readonly string[] PickleExtensions = [".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"];

    private readonly object _gate = new();
    private readonly Dictionary<string, SafeTensorsFile> _open = new(StringComparer.Ordinal);
    private readonly IReadOnlyDictionary<string, string> _tensorToShard;
    private bool _disposed;

    private CheckpointFolder(string folder, SafeTensorsIndex? index, IReadOnlyDictionary<string, string> tensorToShard, IReadOnlyList<string> shardFiles)
    {
        FolderPath = folder;
        Index = index;
        _tensorToShard = tensorToShard;
        ShardFiles = shardFiles;
        TensorNames = tensorToShard.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList().AsReadOnly();
    }

    /// <summary>The full path of the folder.</summary>
    public string FolderPath { get; }

    /// <summary>The full path of <c>config.json</c> (which may not exist).</summary>
    public string ConfigPath => Path.Combine(FolderPath, ConfigFileName);

    /// <summary>The shard index, or null for a single-file checkpoint.</summary>
    public SafeTensorsIndex? Index { get; }

    /// <summary>Whether the weights are sharded.</summary>
    public bool IsSharded => Index is not null;

    /// <summary>The weight files, relative to <see cref="FolderPath"/>, sorted.</summary>
    public IReadOnlyList<string> ShardFiles { get; }

    /// <summary>The names of all tensors across all weight files, sorted.</summary>
    public IReadOnlyList<string> TensorNames { get; }

    /// <summary>Opens a model folder.</summary>
    /// <param name="folderPath">The folder.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="CheckpointFormatException">The folder has no safetensors weights (only pickled ones, or none), or
    /// its weight files are malformed.</exception>
    public static CheckpointFolder Open(string folderPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(folderPath);
        var folder = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folderPath));
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"The checkpoint folder '{folder}' does not exist.");

        var single = Path.Combine(folder, SingleFileName);
        if (File.Exists(single))
        {
            var file = SafeTensorsFile.Open(single);
            try
            {
                var map = file.Tensors.ToDictionary(t => t.Name, _ => SingleFileName, StringComparer.Ordinal);
                var result = new CheckpointFolder(folder, null, map, [SingleFileName]);
                result._open.Add(SingleFileName, file);
                return result;
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }

        var indexPath = Path.Combine(folder, SafeTensorsIndex.FileName);
        if (File.Exists(indexPath))
        {
            var index = SafeTensorsIndex.Load(indexPath);
            return new CheckpointFolder(folder, index, index.WeightMap, index.ShardFiles);
        }

        var pickle = FindPickle(folder);
        if (pickle is not null)
            throw new CheckpointFormatException(pickle,
                "this is a pickled PyTorch checkpoint, which Pip refuses to load: unpickling can execute arbitrary code. " +
                "Convert the model to safetensors first, e.g. in Python with transformers: " +
                "AutoModelForCausalLM.from_pretrained(folder).save_pretrained(out_folder, safe_serialization=True), " +
                "in a sandbox if you do not trust the file.");

        throw new CheckpointFormatException(folder, $"the folder has neither '{SingleFileName}' nor '{SafeTensorsIndex.FileName}'");
    }

    /// <summary>Reads and validates <c>config.json</c>.</summary>
    /// <exception cref="FileNotFoundException">The folder has no <c>config.json</c>.</exception>
    /// <exception cref="CheckpointFormatException">The configuration is malformed or unsupported.</exception>
    public LlamaConfig LoadConfig() => LlamaConfigSerializer.Load(ConfigPath);

    /// <summary>Reads and validates <c>config.json</c> of any supported architecture (see <see cref="ModelConfigSerializer"/>).</summary>
    /// <exception cref="FileNotFoundException">The folder has no <c>config.json</c>.</exception>
    /// <exception cref="CheckpointFormatException">The configuration is malformed or unsupported.</exception>
    public IModelConfig LoadModelConfig() => ModelConfigSerializer.Load(ConfigPath);

    /// <summary>Whether the checkpoint holds a tensor of this name.</summary>
    /// <param name="name">The tensor name.</param>
    public bool Contains(string name) => _tensorToShard.ContainsKey(name);

    /// <summary>The header entry of a tensor (opening its shard if needed).</summary>
    /// <param name="name">The tensor name.</param>
    /// <exception cref="KeyNotFoundException">The checkpoint has no such tensor.</exception>
    /// <exception cref="CheckpointFormatException">The shard is malformed or lacks the tensor the index puts there.</exception>
    public SafeTensorInfo GetInfo(string name) => GetFile(name).GetInfo(name);

    /// <summary>The open weight file that holds a tensor (opening it if needed).</summary>
    /// <param name="name">The tensor name.</param>
    /// <exception cref="KeyNotFoundException">The checkpoint has no such tensor.</exception>
    /// <exception cref="CheckpointFormatException">The shard is malformed or lacks the tensor the index puts there.</exception>
    /// <remarks>The file belongs to this folder: do not dispose it.</remarks>
    public SafeTensorsFile GetFile(string name)
    {
        if (!_tensorToShard.TryGetValue(name, out var shard))
            throw new KeyNotFoundException($"The checkpoint '{FolderPath}' has no tensor named '{name}'.");
        var file = OpenShard(shard);
        if (!file.Contains(name))
            throw new CheckpointFormatException(file.FilePath, $"the shard lacks the tensor that '{SafeTensorsIndex.FileName}' puts there", name);
        return file;
    }

    /// <summary>Opens (once) and returns a weight file of this checkpoint.</summary>
    /// <param name="shardFile">A name from <see cref="ShardFiles"/>.</param>
    /// <remarks>The file belongs to this folder: do not dispose it.</remarks>
    public SafeTensorsFile OpenShard(string shardFile)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_open.TryGetValue(shardFile, out var file))
                return file;
            if (!ShardFiles.Contains(shardFile, StringComparer.Ordinal))
                throw new KeyNotFoundException($"'{shardFile}' is not a weight file of the checkpoint '{FolderPath}'.");
            file = SafeTensorsFile.Open(Path.Combine(FolderPath, shardFile));
            _open.Add(shardFile, file);
            return file;
        }
    }

    /// <summary>Closes all open weight files.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            foreach (var file in _open.Values)
                file.Dispose();
            _open.Clear();
        }
    }

    private static string? FindPickle(string folder)
    {
        foreach (var name in PickleNames)
        {
            var path = Path.Combine(folder, name);
            if (File.Exists(path))
                return path;
        }
        return Directory.EnumerateFiles(folder)
            .Where(f => PickleExtensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
            .OrderBy(f => f, StringComparer.Ordinal)
            .FirstOrDefault();
    }
}
