using System.Text;

namespace Pip.Evaluation;

/// <summary>An evaluation text built from a perplexity dataset file, ready to be tokenized whole.</summary>
/// <param name="Name">The dataset's short name (<c>wikitext2</c>, <c>ptb</c>, or a caller's name).</param>
/// <param name="Text">The joined text.</param>
/// <param name="SourcePath">The full path of the file it was read from, or null.</param>
/// <param name="Rows">The number of rows (lines) joined.</param>
/// <param name="Join">How the rows were joined, in words (recorded in comparison reports).</param>
public sealed record PerplexityText(string Name, string Text, string? SourcePath, int Rows, string Join);

/// <summary>
/// Readers of the perplexity datasets of the pruning papers, joining the rows exactly as LLM-Pruner, SLEB and GPTQ do
/// with Hugging Face <c>datasets</c>, so that the text tokenized is the same string.
/// </summary>
/// <remarks>
/// <para><b>WikiText-2</b> (<c>wiki.test.tokens</c> / <c>wiki.valid.tokens</c>, or the raw release's
/// <c>wiki.test.raw</c>): Hugging Face's <c>wikitext</c> builder yields one row per line of the file, the line
/// <i>with</i> its trailing newline when it holds any non-whitespace character and <c>""</c> otherwise (Python's
/// universal newlines: <c>\r\n</c> and <c>\r</c> read as <c>\n</c>). The papers tokenize
/// <c>"\n\n".join(rows)</c> (LLM-Pruner's <c>process_data</c>, SLEB's <c>get_wikitext2</c>).
/// <see cref="LoadWikiText2(string, string)"/> does exactly that. Note that LLM-Pruner and SLEB load
/// <c>wikitext-2-raw-v1</c>; the tokenized release (<c>wikitext-2-v1</c>, with <c>&lt;unk&gt;</c> and <c>@-@</c>) has
/// the same lines, so the same join applies to both files.</para>
/// <para><b>PTB</b> (Mikolov's <c>ptb.valid.txt</c>, one sentence a line): Hugging Face's <c>ptb_text_only</c> builder
/// yields every line stripped of surrounding whitespace (blank lines as <c>""</c>). LLM-Pruner joins the sentences
/// with <c>"\n\n"</c> (its <c>process_data</c> serves both datasets; <see cref="LlmPrunerPtbSeparator"/>, the
/// default); GPTQ, SparseGPT and Wanda join them with <c>" "</c> (<see cref="GptqPtbSeparator"/>).</para>
/// <para>Both files are read as UTF-8. Tokenization and windows are the model side's business (Pip.Torch's
/// <c>CorpusPerplexity</c>): one tokenization of the whole text, then non-overlapping windows.</para>
/// </remarks>
public static class PerplexityDatasets
{
    /// <summary>The name of WikiText-2: <c>wikitext2</c>.</summary>
    public const string WikiText2Name = "wikitext2";

    /// <summary>The name of the Penn Treebank: <c>ptb</c>.</summary>
    public const string PtbName = "ptb";

    /// <summary>The separator of WikiText-2 rows: <c>"\n\n"</c>.</summary>
    public const string WikiTextSeparator = "\n\n";

    /// <summary>LLM-Pruner's separator of PTB sentences: <c>"\n\n"</c>.</summary>
    public const string LlmPrunerPtbSeparator = "\n\n";

    /// <summary>GPTQ's (and SparseGPT's, Wanda's) separator of PTB sentences: <c>" "</c>.</summary>
    public const string GptqPtbSeparator = " ";

    /// <summary>A display name of a dataset name: <c>WikiText-2</c>, <c>PTB</c>, or the name itself.</summary>
    /// <param name="name">The short name.</param>
    public static string DisplayName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return name switch
        {
            WikiText2Name => "WikiText-2",
            PtbName => "PTB",
            _ => name,
        };
    }

    /// <summary>Reads a WikiText-2 file and joins its rows as the papers do (see the remarks of <see cref="PerplexityDatasets"/>).</summary>
    /// <param name="path">The file (<c>wiki.test.tokens</c>, <c>wiki.valid.tokens</c>, <c>wiki.test.raw</c>, ...).</param>
    /// <param name="name">The name the text is given. Default <see cref="WikiText2Name"/>.</param>
    /// <returns>The joined text.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist; the message names it.</exception>
    /// <exception cref="InvalidDataException">The file holds no text.</exception>
    public static PerplexityText LoadWikiText2(string path, string name = WikiText2Name)
    {
        var full = RequireFile(path, "WikiText-2");
        var rows = WikiTextRows(File.ReadAllText(full, Encoding.UTF8));
        if (rows.All(r => r.Length == 0)) throw new InvalidDataException($"WikiText-2 file '{full}' holds no text.");
        return new PerplexityText(name, string.Join(WikiTextSeparator, rows), full, rows.Count,
            "rows = lines with their newline (blank lines as \"\"), joined with \"\\n\\n\" (LLM-Pruner, SLEB)");
    }

    /// <summary>Reads a PTB file (one sentence a line) and joins its stripped lines (see the remarks of <see cref="PerplexityDatasets"/>).</summary>
    /// <param name="path">The file (<c>ptb.valid.txt</c>, <c>ptb.test.txt</c>).</param>
    /// <param name="separator">What joins the sentences. Default <see cref="LlmPrunerPtbSeparator"/>.</param>
    /// <param name="name">The name the text is given. Default <see cref="PtbName"/>.</param>
    /// <returns>The joined text.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist; the message names it.</exception>
    /// <exception cref="InvalidDataException">The file holds no text.</exception>
    public static PerplexityText LoadPtb(string path, string separator = LlmPrunerPtbSeparator, string name = PtbName)
    {
        ArgumentNullException.ThrowIfNull(separator);
        var full = RequireFile(path, "PTB");
        var sentences = PtbSentences(File.ReadAllText(full, Encoding.UTF8));
        if (sentences.All(s => s.Length == 0)) throw new InvalidDataException($"PTB file '{full}' holds no text.");
        var described = separator switch
        {
            LlmPrunerPtbSeparator => "\"\\n\\n\" (LLM-Pruner)",
            GptqPtbSeparator => "\" \" (GPTQ, SparseGPT, Wanda)",
            _ => $"\"{separator.Replace("\n", "\\n", StringComparison.Ordinal)}\"",
        };
        return new PerplexityText(name, string.Join(separator, sentences), full, sentences.Count, $"lines stripped, joined with {described}");
    }

    /// <summary>
    /// The rows Hugging Face's <c>wikitext</c> builder yields for a file's text: each line with its trailing
    /// <c>\n</c> (<c>\r\n</c> and <c>\r</c> read as <c>\n</c>), or <c>""</c> when the line is only whitespace. A file
    /// ending in a newline has no empty last row.
    /// </summary>
    /// <param name="text">The file's text.</param>
    /// <returns>The rows.</returns>
    public static IReadOnlyList<string> WikiTextRows(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var rows = new List<string>();
        foreach (var line in PythonLines(text))
        {
            rows.Add(string.IsNullOrWhiteSpace(line) ? "" : line);
        }

        return rows;
    }

    /// <summary>The sentences Hugging Face's <c>ptb_text_only</c> builder yields for a file's text: every line, stripped.</summary>
    /// <param name="text">The file's text.</param>
    /// <returns>The sentences.</returns>
    public static IReadOnlyList<string> PtbSentences(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. PythonLines(text).Select(l => l.Trim())];
    }

    /// <summary>Python's <c>for line in open(path)</c>: lines with their ending, universal newlines translated to <c>\n</c>.</summary>
    private static IEnumerable<string> PythonLines(string text)
    {
        var line = new StringBuilder();
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '\r')
            {
                if (i + 1 < text.Length && text[i + 1] == '\n') i++;
                c = '\n';
            }

            line.Append(c);
            if (c == '\n')
            {
                yield return line.ToString();
                line.Clear();
            }
        }

        if (line.Length > 0) yield return line.ToString();
    }

    private static string RequireFile(string path, string dataset)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new FileNotFoundException($"{dataset} file '{full}' is a folder; pass the file itself.", full);
        if (!File.Exists(full)) throw new FileNotFoundException($"{dataset} file '{full}' does not exist.", full);
        return full;
    }
}
