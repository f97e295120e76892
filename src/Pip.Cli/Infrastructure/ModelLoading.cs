using System.CommandLine;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Pip.Checkpoints;
using Pip.Torch;
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
