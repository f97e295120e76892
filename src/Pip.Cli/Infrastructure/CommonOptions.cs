using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace Pip.Cli.Infrastructure;

/// <summary>
/// Factories of the options several commands share, and their parsing into Pip/TorchSharp types. Each call makes a
/// new option instance (an option belongs to one command).
/// </summary>
internal static partial class CommonOptions
{
    /// <summary>The names <c>--dtype</c> accepts, in help order.</summary>
    public static readonly IReadOnlyList<string> DtypeNames = ["float32", "bfloat16", "float16"];

    /// <summary>
    /// <c>--model DIR</c>: a Hugging Face model folder; optional, the bundled demo model by default (resolve it with
    /// <see cref="ModelLoading.ModelFolderOrDefault"/>).
    /// </summary>
    public static Option<string?> Model(string description = "The model folder (Hugging Face layout: config.json, model.safetensors or shards, tokenizer.json). Default: the demo model bundled with pip-prune (models/pip-demo next to the tool), when there is one.") =>
        new("--model", "-m") { Description = description, HelpName = "DIR" };

    /// <summary><c>--out DIR</c>: a folder to write (required).</summary>
    public static Option<string> Out(string description) =>
        new("--out", "-o") { Description = description, Required = true, HelpName = "DIR" };

    /// <summary><c>--overwrite</c>: replace an existing output folder.</summary>
    public static Option<bool> Overwrite() =>
        new("--overwrite") { Description = "Replace the output folder if it exists and is not empty (it is replaced atomically, at the end)." };

    /// <summary><c>--json</c>: write the result as JSON instead of a table.</summary>
    public static Option<bool> Json() =>
        new("--json") { Description = "Write the result to standard output as one JSON object (snake_case keys) instead of a table." };

    /// <summary><c>--dtype</c> (or another name), parsed to a <see cref="ScalarType"/>; null when not given.</summary>
    public static Option<ScalarType?> Dtype(string description, string name = "--dtype") =>
        new(name)
        {
            Description = description,
            HelpName = string.Join('|', DtypeNames),
            CustomParser = result => ParseDtype(result.Tokens.Single().Value, out var type, out var error) ? type : Fail(result, error),
        };

    /// <summary><c>--device</c>, parsed to a <see cref="Device"/>; the CPU by default.</summary>
    public static Option<Device> Device() =>
        new("--device")
        {
            Description = "The device to compute on: cpu, cuda or cuda:N (CUDA needs a TorchSharp CUDA build in place of TorchSharp-cpu).",
            HelpName = "cpu|cuda[:N]",
            DefaultValueFactory = _ => CPU,
            CustomParser = result => ParseDevice(result.Tokens.Single().Value, out var device, out var error) ? device : Fail<Device>(result, error),
        };

    /// <summary>The name of <see cref="AllowNonFinite"/>, which <see cref="ModelLoading.Load"/> looks up on the running command.</summary>
    public const string AllowNonFiniteName = "--allow-non-finite";

    /// <summary><c>--allow-non-finite</c>: load a model whose weights hold NaN or ±Inf values (refused by default).</summary>
    public static Option<bool> AllowNonFinite() =>
        new(AllowNonFiniteName)
        {
            Description = "Load the model even if its weights hold NaN or ±Inf values (refused by default: every score computed from it would be NaN); each such tensor is logged as a warning.",
        };

    /// <summary><c>--stream</c>: stream the model layer by layer from its checkpoint instead of loading it.</summary>
    public static Option<bool> Stream() =>
        new("--stream")
        {
            Description = "Stream the model one decoder layer at a time from its safetensors files instead of loading it (for models larger than memory). "
                + "Without it, Pip streams automatically when the model would not fit --memory-limit.",
        };

    /// <summary><c>--memory-limit</c>: the memory a command may use (bytes, or with K/M/G/T); null when not given.</summary>
    public static Option<long?> MemoryLimit() =>
        new("--memory-limit")
        {
            Description = $"The memory the model may take, e.g. 16G or 4096M (default: {ModelStreaming.DefaultMemoryShare:P0} of the available memory). A model that would not fit is streamed layer by layer.",
            HelpName = "SIZE",
            CustomParser = result => ModelStreaming.TryParseSize(result.Tokens.Single().Value, out var bytes)
                ? bytes
                : Fail<long?>(result, $"'{result.Tokens.Single().Value}' is not a size; use bytes or a number with K, M, G or T (e.g. 16G)."),
        };

    /// <summary>Parses a dtype name (float32/fp32, bfloat16/bf16, float16/fp16/half).</summary>
    public static bool ParseDtype(string text, out ScalarType? type, out string error)
    {
        type = text.Trim().ToLowerInvariant() switch
        {
            "float32" or "fp32" or "float" => ScalarType.Float32,
            "bfloat16" or "bf16" => ScalarType.BFloat16,
            "float16" or "fp16" or "half" => ScalarType.Float16,
            _ => null,
        };
        error = type is null ? $"'{text}' is not a dtype; use one of {string.Join(", ", DtypeNames)}." : "";
        return type is not null;
    }

    /// <summary>Parses a device (<c>cpu</c>, <c>cuda</c>, <c>cuda:N</c>); CUDA availability is checked by <see cref="CheckDevice"/>.</summary>
    public static bool ParseDevice(string text, out Device? device, out string error)
    {
        var t = text.Trim().ToLowerInvariant();
        device = null;
        error = "";
        if (!DevicePattern().IsMatch(t))
        {
            error = $"'{text}' is not a device; use cpu, cuda or cuda:N.";
            return false;
        }
        // Built without torch.device(), which would initialise the CUDA backend (and fail hard without one) while parsing.
        device = t == "cpu" ? CPU : new Device(DeviceType.CUDA, t.Length > 4 ? int.Parse(t.AsSpan(5), System.Globalization.CultureInfo.InvariantCulture) : -1);
        return true;
    }

    /// <summary>Fails with a clear message when the device cannot be used in this process.</summary>
    public static Device CheckDevice(Device device)
    {
        if (device.type == DeviceType.CUDA && !cuda.is_available())
            throw new CliInputException($"Device '{device}' was asked for, but CUDA is not available (this build of pip-prune references TorchSharp-cpu).");
        return device.type == DeviceType.CPU ? device : torch.device(device.type, device.index);
    }

    /// <summary>The usual name of a dtype.</summary>
    public static string DtypeName(ScalarType type) => type switch
    {
        ScalarType.Float32 => "float32",
        ScalarType.BFloat16 => "bfloat16",
        ScalarType.Float16 => "float16",
        _ => type.ToString().ToLowerInvariant(),
    };

    /// <summary>Checks that an integer option is at least <paramref name="minimum"/> (a parse error otherwise).</summary>
    public static Option<int> AtLeast(this Option<int> option, int minimum)
    {
        option.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<int>();
            if (value < minimum) result.AddError($"{option.Name} must be at least {minimum}, got {value}.");
        });
        return option;
    }

    /// <summary>Checks that an optional integer option, when given, is at least <paramref name="minimum"/>.</summary>
    public static Option<int?> AtLeast(this Option<int?> option, int minimum)
    {
        option.Validators.Add(result =>
        {
            var value = result.GetValueOrDefault<int?>();
            if (value < minimum) result.AddError($"{option.Name} must be at least {minimum}, got {value}.");
        });
        return option;
    }

    private static T? Fail<T>(ArgumentResult result, string error)
    {
        result.AddError(error);
        return default;
    }

    private static ScalarType? Fail(ArgumentResult result, string error) => Fail<ScalarType?>(result, error);

    [GeneratedRegex(@"^(cpu|cuda(:\d+)?)$")]
    private static partial Regex DevicePattern();
}
