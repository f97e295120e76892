namespace Pip.Tokenization;

/// <summary>One BPE merge rule: the adjacent tokens <paramref name="Left"/> and <paramref name="Right"/> become their concatenation.</summary>
/// <param name="Left">The left token.</param>
/// <param name="Right">The right token.</param>
public readonly record struct BpeMerge(string Left, string Right)
{
    /// <summary>The merged token.</summary>
    public string Result => Left + Right;
}

/// <summary>
/// A byte-level BPE vocabulary (GPT-2 style): tokens written in <see cref="ByteLevelAlphabet"/>, merges in rank order,
/// and special tokens. <see cref="HfTokenizerWriter"/> writes it as a Hugging Face tokenizer; <see cref="BpeTrainer"/>
/// makes one from text.
/// </summary>
public sealed class ByteLevelBpeModel
{
    private readonly Dictionary<string, int> _ids;

    /// <summary>Creates and checks a model.</summary>
    /// <param name="tokens">The tokens; a token's id is its index. Must hold all 256 characters of the byte-level alphabet.</param>
    /// <param name="merges">The merges, highest priority first; both sides and the result must be tokens.</param>
    /// <param name="specialTokens">The special tokens (BOS, EOS, ...); each must be in <paramref name="tokens"/>.</param>
    /// <exception cref="ArgumentException">The tokens, merges or special tokens are inconsistent.</exception>
    public ByteLevelBpeModel(IReadOnlyList<string> tokens, IReadOnlyList<BpeMerge> merges, IReadOnlyList<string>? specialTokens = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        ArgumentNullException.ThrowIfNull(merges);
        specialTokens ??= [];

        _ids = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++)
        {
            string token = tokens[i] ?? throw new ArgumentException($"Token {i} is null.", nameof(tokens));
            if (token.Length == 0 || !_ids.TryAdd(token, i))
            {
                throw new ArgumentException($"Token {i} ('{token}') is empty or repeated.", nameof(tokens));
            }
        }

        var specials = new HashSet<string>(StringComparer.Ordinal);
        foreach (string special in specialTokens)
        {
            if (special is null || !_ids.ContainsKey(special) || !specials.Add(special))
            {
                throw new ArgumentException($"Special token '{special}' is not a token or is repeated.", nameof(specialTokens));
            }
        }

        for (int i = 0; i < tokens.Count; i++)
        {
            if (!specials.Contains(tokens[i]) && !tokens[i].All(c => ByteLevelAlphabet.TryCharToByte(c, out _)))
            {
                throw new ArgumentException($"Token {i} ('{tokens[i]}') has characters outside the byte-level alphabet.", nameof(tokens));
            }
        }

        for (int b = 0; b < 256; b++)
        {
            char c = ByteLevelAlphabet.ByteToChar((byte)b);
            if (!_ids.ContainsKey(c.ToString()))
            {
                throw new ArgumentException($"The tokens lack the byte-level character '{c}' (byte {b}); every byte needs a token.", nameof(tokens));
            }
        }

        var seen = new HashSet<BpeMerge>();
        foreach (BpeMerge merge in merges)
        {
            if (merge.Left is null || merge.Right is null
                || !_ids.ContainsKey(merge.Left) || !_ids.ContainsKey(merge.Right) || !_ids.ContainsKey(merge.Result)
                || specials.Contains(merge.Left) || specials.Contains(merge.Right))
            {
                throw new ArgumentException($"Merge '{merge.Left} {merge.Right}' needs both sides and '{merge.Result}' among the (non-special) tokens.", nameof(merges));
            }

            if (!seen.Add(merge))
            {
                throw new ArgumentException($"Merge '{merge.Left} {merge.Right}' is repeated.", nameof(merges));
            }
        }

        Tokens = [.. tokens];
        Merges = [.. merges];
        SpecialTokens = [.. specialTokens];
    }

    /// <summary>The tokens; a token's id is its index.</summary>
    public IReadOnlyList<string> Tokens { get; }

    /// <summary>The merges, highest priority first.</summary>
    public IReadOnlyList<BpeMerge> Merges { get; }

    /// <summary>The special tokens.</summary>
    public IReadOnlyList<string> SpecialTokens { get; }

    /// <summary>The id of <paramref name="token"/>.</summary>
    /// <param name="token">A token.</param>
    /// <returns>Its id, or <see langword="null"/> when it is not a token.</returns>
    public int? IdOf(string token) => _ids.TryGetValue(token, out int id) ? id : null;
}
