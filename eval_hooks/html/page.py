"""The page shell: one HTML file with its style and script inline (no server, no network, no CDN).

Sections are HTML strings with their element ids; data the script renders (samples, rollouts) is embedded as
JSON in ``<script type="application/json">`` elements, read by the inline script below.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#233;color:#fff;padding:10px 18px}header h1{font-size:18px;margin:0}
header nav a{color:#cde;margin-right:14px;font-size:13px}
section{background:#fff;margin:14px 18px;padding:10px 16px;border:1px solid #ddd;border-radius:6px}
h2{font-size:16px;margin:4px 0 10px}h3{font-size:14px;margin:10px 0 6px}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #e2e2e2;padding:3px 7px;vertical-align:top}
th{background:#f3f5f7;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#8a5a00;font-size:12px}.muted{color:#777;font-size:12px}.na{fill:#999;font-size:12px}
.charts{display:flex;flex-wrap:wrap;gap:8px}.chart{background:#fff;border:1px solid #eee}
.ct{font-size:11px;font-weight:600}.tk{font-size:9px;fill:#555}.lg{font-size:9px;fill:#333}.grid{stroke:#eee}
pre{background:#f6f8fa;padding:8px;overflow:auto;max-height:320px;font-size:12px}
details>summary{cursor:pointer}.tree details{margin-left:18px}.tree>details{margin-left:0}
.node{display:inline-flex;gap:10px;align-items:center}.bar{position:absolute;left:0;top:0;height:8px;background:#4a90d9}
.barbox{display:inline-block;width:120px;height:8px;background:#eee;position:relative}
.ci{position:absolute;top:-2px;height:12px;border-left:1px solid #333;border-right:1px solid #333}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin-bottom:8px}
.controls button{border:1px solid #bbb;background:#f4f4f4;border-radius:4px;padding:2px 9px;cursor:pointer}
.controls button.on{background:#233;color:#fff}
.sample{display:grid;grid-template-columns:180px 1fr;gap:10px;border-top:1px solid #eee;padding:8px 0}
.thumbs img{width:160px;height:auto;margin:0 4px 4px 0;border:1px solid #ddd}
.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.txt{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px;background:#f6f8fa;padding:4px 6px;
margin:2px 0}.kv{font-size:12px}.kv b{color:#555}
.fields{display:grid;grid-template-columns:120px 1fr;gap:2px 8px;align-items:start}.fields>.head{grid-column:1/3}
.fields .txt{margin:0}.group{border-top:1px solid #eee;padding:6px 0}.pos{color:#1a7f37}.neg{color:#c62828}
.gain{background:#e6f4ea}.drop{background:#fdecea}.sig{font-weight:700}
"""

SCRIPT = r"""
(function(){
'use strict';
function $(s,r){return (r||document).querySelector(s);}
function el(tag,attrs,text){var e=document.createElement(tag);if(attrs)for(var k in attrs)e.setAttribute(k,attrs[k]);
 if(text!==undefined&&text!==null)e.textContent=String(text);return e;}
function data(id){var s=document.getElementById(id);return s?JSON.parse(s.textContent):null;}
function fmt(v){return (typeof v==='number')?(Math.abs(v)>=100||v===Math.round(v)?String(v):v.toFixed(3)):(v===null||v===undefined?'-':String(v));}
function thumbs(list){var d=el('div',{'class':'thumbs'});(list||[]).forEach(function(t){
 if(t.src){var i=el('img',{src:t.src,alt:t.title||'',title:t.title||''});d.appendChild(i);}
 else d.appendChild(el('div',{'class':'note'},t.error||'no image'));});return d;}
function buttons(box,name,values,state,render){box.appendChild(el('span',{'class':'muted'},name+':'));
 values.forEach(function(v){var b=el('button',{'data-filter':name+'='+v[0]},v[1]);if(state[name]===v[0])b.className='on';
  b.addEventListener('click',function(){state[name]=v[0];Array.prototype.forEach.call(box.querySelectorAll('button'),
  function(x){if(x.getAttribute('data-filter').split('=')[0]===name)x.className=(x===b?'on':'');});render(true);});
  box.appendChild(b);});}
function select(box,name,values,state,render){var s=el('select',{'data-filter':name});
 values.forEach(function(v){var o=el('option',{value:v[0]},v[1]);s.appendChild(o);});
 s.addEventListener('change',function(){state[name]=s.value;render(true);});box.appendChild(el('span',{'class':'muted'},name+':'));
 box.appendChild(s);return s;}
function uniq(a){var seen={},out=[];a.forEach(function(x){if(x!==undefined&&x!==null&&!seen[x]){seen[x]=1;out.push(x);}});return out.sort();}

// ---------------------------------------------------------------- samples
function samples(){var recs=data('samples-data');var root=$('#samples-list');if(!recs||!root)return;
 var state={level:'',leaf:'',result:'all',shown:100};var box=$('#samples-controls');
 var count=$('#samples-count');
 function render(reset){if(reset)state.shown=100;
  var m=recs.filter(function(r){return (!state.level||r.level===state.level)&&(!state.leaf||r.leaf===state.leaf)&&
   (state.result==='all'||(state.result==='correct')===r.correct);});
  root.textContent='';m.slice(0,state.shown).forEach(function(r){root.appendChild(card(r));});
  count.textContent=m.length+' of '+recs.length+' records match; '+Math.min(m.length,state.shown)+' shown';
  more.style.display=m.length>state.shown?'':'none';}
 var more=el('button',{id:'samples-more'},'show more');more.addEventListener('click',function(){state.shown+=100;render(false);});
 root.parentNode.appendChild(more);
 buttons(box,'level',[['','all']].concat(uniq(recs.map(function(r){return r.level;})).map(function(v){return [v,v];})),state,render);
 select(box,'leaf',[['','all']].concat(uniq(recs.map(function(r){return r.leaf;})).map(function(v){return [v,v];})),state,render);
 buttons(box,'result',[['all','all'],['correct','correct'],['wrong','wrong']],state,render);
 render(true);}
function card(r){var c=el('div',{'class':'sample','data-level':r.level,'data-correct':String(r.correct)});
 var left=el('div');left.appendChild(thumbs(r.media));c.appendChild(left);var right=el('div',{'class':'fields'});
 var head=el('div',{'class':'kv head'});head.appendChild(el('span',{'class':r.correct?'ok':'bad'},(r.correct?'correct ':'wrong ')+fmt(r.score)));
 head.appendChild(el('span',{'class':'muted'},'  '+r.leaf+'  '+r.id+'  ('+r.metric+')'));right.appendChild(head);
 [['prompt',r.prompt],['response',r.response],['extracted answer',r.extracted],['answer',r.answer],['reason',r.reason]].forEach(function(p){
  if(p[1]===undefined||p[1]===null||p[1]==='')return;var k=el('div',{'class':'kv'});k.appendChild(el('b',null,p[0]));
  right.appendChild(k);right.appendChild(el('div',{'class':'txt'},p[1]));});c.appendChild(right);return c;}

// ---------------------------------------------------------------- rollouts
function rollouts(){var rows=data('rollouts-data');var root=$('#rollouts-list');if(!rows||!root)return;
 var state={level:'',step:'',shown:30};var box=$('#rollouts-controls');var count=$('#rollouts-count');
 var groups=[],byKey={};rows.forEach(function(r){var k=r.step+'/'+r.group;if(!byKey[k]){byKey[k]={step:r.step,group:r.group,
  level:r.level,leaf:r.leaf,prompt:r.prompt,answer:r.answer,media:r.media,rows:[]};groups.push(byKey[k]);}byKey[k].rows.push(r);});
 var comps=uniq([].concat.apply([],rows.map(function(r){return Object.keys(r.rewards||{});})));
 function render(reset){if(reset)state.shown=30;var m=groups.filter(function(g){return (!state.level||g.level===state.level)&&
  (!state.step||String(g.step)===state.step);});root.textContent='';
  m.slice(0,state.shown).forEach(function(g){root.appendChild(group(g,comps));});
  count.textContent=m.length+' of '+groups.length+' groups match ('+rows.length+' completions logged); '+Math.min(m.length,state.shown)+' shown';
  more.style.display=m.length>state.shown?'':'none';}
 var more=el('button',{id:'rollouts-more'},'show more');more.addEventListener('click',function(){state.shown+=30;render(false);});
 root.parentNode.appendChild(more);
 buttons(box,'level',[['','all']].concat(uniq(rows.map(function(r){return r.level;})).map(function(v){return [v,v];})),state,render);
 select(box,'step',[['','all']].concat(uniq(rows.map(function(r){return r.step;})).sort(function(a,b){return a-b;}).map(function(v){return [String(v),String(v)];})),state,render);
 render(true);}
function group(g,comps){var d=el('div',{'class':'group','data-level':g.level});
 var h=el('div',{'class':'kv'});h.appendChild(el('b',null,'step '+g.step+' · '+(g.level||'other')+(g.leaf?' / '+g.leaf:'')+' · group '+g.group+' · answer '+fmt(g.answer)));d.appendChild(h);
 var top=el('div',{'class':'sample'});top.appendChild(thumbs(g.media));top.appendChild(el('div',{'class':'txt'},g.prompt||''));d.appendChild(top);
 var t=el('table');var hr=el('tr');['#','completion'].concat(comps).concat(['reward','advantage']).forEach(function(c){hr.appendChild(el('th',null,c));});t.appendChild(hr);
 g.rows.forEach(function(r,i){var tr=el('tr');tr.appendChild(el('td',{'class':'num'},i));var c=el('td');c.appendChild(el('div',{'class':'txt'},r.completion));tr.appendChild(c);
  comps.forEach(function(k){tr.appendChild(el('td',{'class':'num'},fmt((r.rewards||{})[k])));});tr.appendChild(el('td',{'class':'num'},fmt(r.reward)));
  var a=el('td',{'class':'num '+(r.advantage>0?'pos':r.advantage<0?'neg':'')},fmt(r.advantage));tr.appendChild(a);t.appendChild(tr);});
 d.appendChild(t);return d;}

// ---------------------------------------------------------------- tree
function tree(){var b=$('#tree-expand'),c=$('#tree-collapse');function all(open){Array.prototype.forEach.call(
 document.querySelectorAll('#tree details'),function(d){d.open=open;});}if(b)b.addEventListener('click',function(){all(true);});
 if(c)c.addEventListener('click',function(){all(false);});}
samples();rollouts();tree();
document.body.setAttribute('data-ready','1');
})();
"""


def json_block(element_id: str, obj: Any) -> str:
    """``obj`` as JSON inside a script element; every ``<`` escaped (``\\u003c``) so no string can end the element
    or open a comment in it."""
    from eval_hooks.io import _finite  # NaN / inf (a number parsed from a response) as strings: strict JSON

    text = json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False, default=str).replace("<", "\\u003c")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def section(element_id: str, title: str, body: str) -> str:
    return f'<section id="{element_id}"><h2>{escape(title)}</h2>{body}</section>'


def document(title: str, sections: list[tuple[str, str, str]], data: str = "", subtitle: str = "") -> str:
    """The whole page: ``sections`` are (id, title, inner html); ``data``: json_block elements."""
    nav = "".join(f'<a href="#{sid}">{escape(t)}</a>' for sid, t, _ in sections)
    body = "".join(section(sid, t, inner) for sid, t, inner in sections)
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body><header><h1>{escape(title)}</h1>"
            f"<div class=\"muted\" style=\"color:#bcd\">{escape(subtitle)}</div><nav>{nav}</nav></header>"
            f"{body}{data}<script>{SCRIPT}</script></body></html>")


def table(header: list[str], rows: list[list[str]], raw: bool = False) -> str:
    """An HTML table; cells escaped unless ``raw`` (then the caller escaped them)."""
    def cell(v: str, tag: str) -> str:
        return f"<{tag}>{v if raw else escape(str(v))}</{tag}>"
    return ("<table><tr>" + "".join(cell(h, "th") for h in header) + "</tr>"
            + "".join("<tr>" + "".join(cell(v, "td") for v in row) + "</tr>" for row in rows) + "</table>")
