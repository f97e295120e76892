using System.CommandLine;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Pip.Checkpoints;
using Pip.Torch;
using Pip.Torch.Streaming;
using static TorchSharp.torch;

namespace Pip.Cli.Infrastructure;

/// <summary>Loading and writing model folders with the checks and messages the commands share.</summary>
internal static class ModelLoading
{
    /// <summary>
    /// The model folder to use: <paramref name="folder"/> when given, else the bundled default
    /// (<see cref="CliContext.DefaultModelFolder"/>) when it exists.
    /// </summary>
    /// <exception cref="CliInputException">No folder is given and no default model is bundled.</exception>
    public static string ModelFolderOrDefault(string? folder, CliContext context)
    {
        if (!string.IsNullOrWhiteSpace(folder)) return folder;
        var bundled = context.DefaultModelFolder;
        if (File.Exists(Path.Combine(bundled, CheckpointFolder.ConfigFileName))) return bundled;
        throw new CliInputException($"No --model was given and no default model is bundled with this build of pip-prune (looked for '{bundled}'); pass --model DIR.");
    }

    /// <summary>The calibration file to use: the given one, else the bundled sample; it must exist.</summary>
    /// <exception cref="CliInputException">The file is missing, or no file is given and no sample is bundled.</exception>
    public static string CalibrationFileOrDefault(string? file, CliContext context)
    {
        if (file is null)
        {
            if (!File.Exists(context.DefaultCalibrationFile))
                throw new CliInputException($"No --calibration was given and no calibration text is bundled with this build of pip-prune (looked for '{context.DefaultCalibrationFile}'); pass --calibration FILE.");
            return Path.GetFullPath(context.DefaultCalibrationFile);
        }

        var full = Path.GetFullPath(file);
        if (!File.Exists(full))
            throw new CliInputException(Directory.Exists(full) ? $"Calibration file '{full}' is a folder, not a file." : $"Calibration file '{full}' does not exist.");
        return full;
    }

    /// <summary>
    /// Checks that a model folder exists and has a <c>config.json</c>; returns its full path.
    /// </summary>
    /// <exception cref="CliInputException">The folder or its config is missing.</exception>
    public static string RequireModelFolder(string folder)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        if (File.Exists(full))
        {
            var hint = full.EndsWith(".bin", StringComparison.OrdinalIgnoreCase)
                ? " (a llama2.c checkpoint converts to one with 'pip-prune convert --from llama2c MODEL.bin --tokenizer TOKENIZER --out DIR')"
                : "";
            throw new CliInputException($"Model folder '{full}' is a file; pass the folder that holds config.json and the safetensors weights{hint}.");
        }
        if (!Directory.Exists(full))
            throw new CliInputException($"Model folder '{full}' does not exist.");
        if (!File.Exists(Path.Combine(full, CheckpointFolder.ConfigFileName)))
            throw new CliInputException($"Model folder '{full}' has no {CheckpointFolder.ConfigFileName}.");
        return full;
    }

    /// <summary>
    /// Loads a model folder (weights, config, tokenizer) in a dtype (null: the checkpoint's own) on a device, for the
    /// running command: cancelled by its token, and with non-finite weights allowed (and logged as warnings) when the
    /// command has <c>--allow-non-finite</c> and it is given.
    /// </summary>
    /// <exception cref="CliInputException">The folder is missing or its weights do not fit its config.</exception>
    /// <exception cref="CheckpointFormatException">A file of the folder is malformed, its config does not fit its
    /// weights, or its weights hold NaN/±Inf values without <c>--allow-non-finite</c> (the message names the file).</exception>
    /// <exception cref="OperationCanceledException">The run was cancelled.</exception>
    public static TorchCausalLM Load(CommandInvocation run, string folder, ScalarType? dtype, Device device)
    {
        var logger = run.Logger;
        var full = RequireModelFolder(folder);
        device = CommonOptions.CheckDevice(device);
        var clock = Stopwatch.StartNew();
        var allowNonFinite = run.ParseResult.CommandResult.Command.Options.FirstOrDefault(o => o.Name == CommonOptions.AllowNonFiniteName) is Option<bool> allow
            && run.Get(allow);
        logger.LogDebug("Loading {Folder}.", full);
        TorchCausalLM model;
        try
        {
            model = TorchCausalLM.Load(full, new TorchLoadOptions { Dtype = dtype, Device = device, AllowNonFiniteWeights = allowNonFinite, Logger = logger }, run.CancellationToken);
        }
        catch (ArgumentException e) when (e is not ArgumentNullException)
        {
            // The config loaded but the model cannot be built from it, or the weights do not fit it.
            var message = e.ParamName is null ? e.Message : e.Message.Replace($" (Parameter '{e.ParamName}')", "", StringComparison.Ordinal);
            throw new CliInputException($"Model folder '{full}' cannot be loaded: {message}", e);
        }
        logger.LogInformation("Loaded {Folder}: {Layers} layers, {Parameters:N0} parameters, {Dtype} on {Device}, in {Seconds:F1} s.",
            full, model.LayerCount, model.ParameterCount, CommonOptions.DtypeName(model.Model.Dtype), model.Model.Device, clock.Elapsed.TotalSeconds);
        return model;
    }

    /// <summary>Writes a model folder atomically in <paramref name="dtype"/> (unless cancelled first), saying so in the log.</summary>
    public static void Save(CommandInvocation run, TorchCausalLM model, string folder, ScalarType dtype, bool overwrite)
    {
        run.CancellationToken.ThrowIfCancellationRequested();
        run.Logger.LogInformation("Writing {Folder} ({Dtype}).", folder, CommonOptions.DtypeName(dtype));
        model.Save(folder, dtype, overwrite, run.CancellationToken);
    }

    /// <summary>The model's tokenizer, or a clear error when the folder has none.</summary>
    public static Pip.Tokenization.HfTokenizer RequireTokenizer(TorchCausalLM model) =>
        model.Tokenizer ?? throw new CliInputException($"Model folder '{model.SourceFolder}' has no tokenizer.json; this command needs one to turn text into tokens.");

    /// <summary>
    /// Checks an output folder before any work: refused when it is a file, or exists and is not empty without
    /// <paramref name="overwrite"/>. Returns its full path. (The writers check again and write atomically.)
    /// </summary>
    public static string CheckOutputFolder(string folder, bool overwrite)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder));
        if (File.Exists(full))
            throw new CliInputException($"Output folder '{full}' is a file.");
        if (!overwrite && Directory.Exists(full) && Directory.EnumerateFileSystemEntries(full).Any())
            throw new CliInputException($"Output folder '{full}' exists and is not empty; pass --overwrite to replace it.");
        return full;
    }

    /// <summary>Reads a UTF-8 text file, with a clear error when it is missing.</summary>
    public static string ReadText(string file, string what)
    {
        var full = Path.GetFullPath(file);
        if (!File.Exists(full))
            throw new CliInputException(Directory.Exists(full) ? $"{what} '{full}' is a folder, not a file." : $"{what} '{full}' does not exist.");
        return File.ReadAllText(full);
    }
}

/// <summary>
/// A model a command works on: loaded in memory (<see cref="Resident"/>), or streamed layer by layer from its checkpoint
/// (<see cref="Streamed"/>). Owns it.
/// </summary>
internal sealed class CommandModel : IDisposable
{
    public CommandModel(TorchCausalLM? resident, StreamedCausalLM? streamed, string folder)
    {
        Resident = resident;
        Streamed = streamed;
        Folder = folder;
    }

    public TorchCausalLM? Resident { get; }

    public StreamedCausalLM? Streamed { get; }

    public string Folder { get; }

    public IPrunableModel Model => (IPrunableModel?)Resident ?? Streamed!;

    public IModelConfig Config => Resident?.ModelConfig ?? Streamed!.Config;

    public ScalarType ComputeType => Resident?.Model.Dtype ?? Streamed!.ComputeType;

    public LayerEngine Engine => LayerEngine.For(Model);

    public Pip.Tokenization.HfTokenizer Tokenizer => (Resident is null ? Streamed!.Tokenizer : Resident.Tokenizer)
        ?? throw new CliInputException($"Model folder '{Folder}' has no tokenizer.json; this command needs one to turn text into tokens.");

    public void Dispose()
    {
        Resident?.Dispose();
        Streamed?.Dispose();
    }
}

/// <summary>Whether a model is streamed from its checkpoint or loaded, by <c>--stream</c> and <c>--memory-limit</c>.</summary>
internal static class ModelStreaming
{
    /// <summary>The share of the available memory used when no <c>--memory-limit</c> is given.</summary>
    public const double DefaultMemoryShare = 0.8;

    /// <summary>How many times the weights a resident model needs at most (weights, one layer's gradients, activations): measured 1.46 for a PIP round.</summary>
    public const double ResidentOverhead = 1.5;

    /// <summary>Bytes of the head chunk a streamed pass reads and multiplies at once.</summary>
    public const long HeadChunkBytes = 256L << 20;

    /// <summary>
    /// Loads the model in memory, or opens it for streaming when <paramref name="stream"/> is set or when it would not fit
    /// <paramref name="memoryLimit"/> (default: <see cref="DefaultMemoryShare"/> of the available memory), saying which in the log.
    /// </summary>
    /// <exception cref="CliInputException">Streaming is needed but the model cannot be streamed, or the memory limit is below one layer's working set.</exception>
    public static CommandModel LoadOrStream(CommandInvocation run, string folder, ScalarType? dtype, Device device, bool stream, long? memoryLimit, string? streamObstacle = null)
    {
        var full = ModelLoading.RequireModelFolder(folder);
        device = CommonOptions.CheckDevice(device);
        if (!ShouldStream(run, full, dtype, device, stream, memoryLimit, streamObstacle)) return new CommandModel(ModelLoading.Load(run, full, dtype, device), null, full);
        var logger = run.Logger;
        StreamedCausalLM streamed;
        try
        {
            streamed = StreamedCausalLM.Open(full, new StreamingOptions { ComputeType = dtype, Device = device, HeadChunkBytes = HeadChunkBytes });
        }
        catch (NotSupportedException e)
        {
            throw new CliInputException($"Model folder '{full}' cannot be streamed: {e.Message}", e);
        }

        logger.LogInformation("Opened {Folder} for streaming: {Layers} layers, {Parameters:N0} parameters, computing in {Dtype} on {Device}.",
            full, streamed.LayerCount, streamed.ParameterCount, CommonOptions.DtypeName(streamed.ComputeType), device);
        return new CommandModel(null, streamed, full);
    }

    /// <summary>
    /// Whether a command streams the model: when <paramref name="stream"/> is set or when it would not fit
    /// <paramref name="memoryLimit"/> (default: <see cref="DefaultMemoryShare"/> of the available memory), saying which in the log.
    /// </summary>
    /// <exception cref="CliInputException">Streaming is needed but the mode cannot stream and <paramref name="stream"/> was given, or the memory limit is below one layer's working set.</exception>
    public static bool ShouldStream(CommandInvocation run, string folder, ScalarType? dtype, Device device, bool stream, long? memoryLimit, string? streamObstacle = null)
    {
        var logger = run.Logger;
        var full = Path.GetFullPath(folder);
        var plan = Plan(full, dtype, device, memoryLimit);
        bool streaming = stream || plan.ResidentBytes > plan.Limit;
        if (streaming && streamObstacle is not null)
        {
            if (stream) throw new CliInputException($"--stream: {streamObstacle}; leave --stream out.");
            logger.LogWarning("The model needs about {Need} in memory, more than the limit of {Limit}; this mode cannot stream, loading it anyway.", Bytes(plan.ResidentBytes), Bytes(plan.Limit));
            streaming = false;
        }

        if (!streaming) return false;
        if (plan.LayerWorkingSet > plan.Limit)
            throw new CliInputException($"--memory-limit {Bytes(plan.Limit)} is below what streaming '{full}' needs: about {Bytes(plan.LayerWorkingSet)} "
                + $"(the largest layer's weights, gradients and recomputation in {CommonOptions.DtypeName(plan.ComputeType)}, and a chunk of the output projection). Give at least that.");
        if (stream)
            logger.LogInformation("--stream: streaming {Folder} layer by layer ({Need} would be needed in memory).", full, Bytes(plan.ResidentBytes));
        else
            logger.LogInformation("The model needs about {Need} in memory, more than the memory limit of {Limit}: streaming {Folder} layer by layer (about {Layer} per layer).",
                Bytes(plan.ResidentBytes), Bytes(plan.Limit), full, Bytes(plan.LayerWorkingSet));
        return true;
    }

    /// <summary>Parses a size: bytes, or a number with K, M, G or T (powers of 1024; a trailing B or iB is allowed).</summary>
    public static bool TryParseSize(string text, out long bytes)
    {
        bytes = 0;
        var t = text.Trim().ToUpperInvariant();
        if (t.EndsWith("IB", StringComparison.Ordinal)) t = t[..^2];
        else if (t.EndsWith('B')) t = t[..^1];
        double scale = 1;
        if (t.Length > 0 && "KMGT".Contains(t[^1], StringComparison.Ordinal))
        {
            scale = Math.Pow(1024, "KMGT".IndexOf(t[^1], StringComparison.Ordinal) + 1);
            t = t[..^1];
        }

        if (!double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) || !(value > 0)) return false;
        bytes = (long)(value * scale);
        return bytes > 0;
    }

    /// <summary>A size for people (GiB with two decimals, or MiB).</summary>
    public static string Bytes(long bytes) => bytes >= 1L << 30
        ? $"{bytes / (double)(1L << 30):0.00} GiB"
        : $"{bytes / (double)(1L << 20):0} MiB";

    private sealed record MemoryPlan(long ResidentBytes, long LayerWorkingSet, long Limit, ScalarType ComputeType);

    private static MemoryPlan Plan(string folder, ScalarType? dtype, Device device, long? memoryLimit)
    {
        using var checkpoint = CheckpointFolder.Open(folder);
        var config = checkpoint.LoadModelConfig();
        var type = TorchPrecision.Resolve(dtype, TorchCausalLM.DtypeOf(config), device, config); // the same (cached) decision the load makes
        long elementSize = type == ScalarType.Float32 ? 4 : 2;
        long total = 0;
        var layers = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var name in checkpoint.TensorNames)
        {
            if (config.TieWordEmbeddings && name == "lm_head.weight") continue;
            long count = checkpoint.GetInfo(name).ElementCount;
            total += count;
            var parts = name.Split('.');
            if (parts.Length > 3 && parts[1] == "layers") layers[parts[2]] = layers.GetValueOrDefault(parts[2]) + count;
        }

        long largestLayer = layers.Count == 0 ? 0 : layers.Values.Max();
        long limit = memoryLimit ?? (long)(AvailableMemory() * DefaultMemoryShare);
        long headChunk = Math.Min(HeadChunkBytes, (long)config.VocabSize * config.HiddenSize * elementSize);
        return new MemoryPlan((long)(total * elementSize * ResidentOverhead), largestLayer * elementSize * 3 + 2 * headChunk, limit, type);
    }

    /// <summary>The memory available to this process: MemAvailable of /proc/meminfo on Linux, else what the runtime reports.</summary>
    private static long AvailableMemory()
    {
        try
        {
            if (File.Exists("/proc/meminfo"))
            {
                foreach (var line in File.ReadLines("/proc/meminfo"))
                {
                    if (!line.StartsWith("MemAvailable:", StringComparison.Ordinal)) continue;
                    var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                    return long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }
}
